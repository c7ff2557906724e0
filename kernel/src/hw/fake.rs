//! The host fake of the hardware interface (next commit).
