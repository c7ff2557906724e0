//! What a VMM is told about the guest it runs: `mgmt` writes a [`GuestConfig`]
//! (postcard) into a memory object it grants the VMM as `guest-config`, and
//! grants the guest's kernel image as `module:guest`.

use heapless::String;
use serde::{Deserialize, Serialize};

use crate::error::Error;

pub const GUEST_CONFIG_VERSION: u32 = 1;
/// The most guest RAM one VMM gives a guest (3 GiB: below the 32-bit hole).
pub const MAX_GUEST_MEMORY_KIB: u32 = 3 << 20;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuestConfig {
    pub version: u32,
    /// The guest's name: its console lines are `[<name>] …`.
    pub name: String<24>,
    /// Guest RAM, from guest-physical 0.
    pub memory_kib: u32,
    /// The kernel command line (Multiboot).
    pub cmdline: String<128>,
    /// Virtual CPUs.
    pub vcpus: u8,
}

impl GuestConfig {
    /// Checks what a VMM must not take on trust.
    pub fn validate(&self) -> Result<(), Error> {
        let ok = self.version == GUEST_CONFIG_VERSION
            && !self.name.is_empty()
            && self.memory_kib >= 2048
            && self.memory_kib <= MAX_GUEST_MEMORY_KIB
            && self.memory_kib % 4 == 0
            && (1..=16).contains(&self.vcpus);
        if ok {
            Ok(())
        } else {
            Err(Error::Malformed)
        }
    }

    pub fn encode<'a>(&self, buf: &'a mut [u8]) -> Result<&'a mut [u8], Error> {
        postcard::to_slice(self, buf).map_err(|_| Error::Malformed)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        let c: GuestConfig = postcard::from_bytes(bytes).map_err(|_| Error::Malformed)?;
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> GuestConfig {
        GuestConfig {
            version: GUEST_CONFIG_VERSION,
            name: String::try_from("guest-hello").unwrap(),
            memory_kib: 16 << 10,
            cmdline: String::try_from("console=ttyS0").unwrap(),
            vcpus: 1,
        }
    }

    #[test]
    fn round_trips_and_checks() {
        let mut buf = [0u8; 256];
        let bytes = sample().encode(&mut buf).unwrap().to_vec();
        assert_eq!(GuestConfig::decode(&bytes), Ok(sample()));
        let mut c = sample();
        c.memory_kib = 1024;
        assert_eq!(c.validate(), Err(Error::Malformed));
        let mut c = sample();
        c.vcpus = 0;
        assert_eq!(c.validate(), Err(Error::Malformed));
    }

    proptest! {
        #[test]
        fn hostile_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = GuestConfig::decode(&bytes);
        }
    }
}
