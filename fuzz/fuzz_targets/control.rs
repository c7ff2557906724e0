//! Fuzzes `ipc::control` as `mgmt` meets it: the input is a byte stream
//! from the control line, cut into frames by the same `Framer` mgmt uses;
//! every frame must decode to a checked request or an error (never a panic),
//! a decoded request must pass its own checks and re-encode to a frame that
//! decodes to it again, and the same bytes read as a response frame must
//! be refused or checked too.

#![no_main]

use ipc::control::{FrameEvent, Framer, Request, Response, MAX_REQUEST};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut framer = Framer::<MAX_REQUEST>::new();
    for &b in data {
        if let Some(FrameEvent::Frame(f)) = framer.push(b) {
            let mut copy = f.to_vec();
            if let Ok(r) = Request::decode(f) {
                assert_eq!(r.validate(), Ok(()));
                let mut buf = [0u8; MAX_REQUEST + 1];
                let frame = r.encode(&mut buf).expect("a decoded request re-encodes");
                let n = frame.len() - 1;
                assert_eq!(Request::decode(&mut frame[..n]), Ok(r));
            }
            if let Ok(r) = Response::decode(&mut copy) {
                assert_eq!(r.validate(), Ok(()));
            }
        }
    }
});
