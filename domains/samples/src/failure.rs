//! What went wrong in a sample domain, to log as `<domain>: FAIL <what>`.

use core::fmt;

use ipc::Error;

/// A step that failed, and the error the kernel gave if it gave one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure {
    pub what: &'static str,
    pub error: Option<Error>,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.error {
            Some(e) => write!(f, "{}: {e:?}", self.what),
            None => write!(f, "{}", self.what),
        }
    }
}

impl Failure {
    pub const fn new(what: &'static str) -> Self {
        Self { what, error: None }
    }
}

/// Names the step of a result or an option that may fail.
pub trait OrFail<T> {
    fn or_fail(self, what: &'static str) -> Result<T, Failure>;
}

impl<T> OrFail<T> for Result<T, Error> {
    fn or_fail(self, what: &'static str) -> Result<T, Failure> {
        self.map_err(|e| Failure { what, error: Some(e) })
    }
}

impl<T> OrFail<T> for Option<T> {
    fn or_fail(self, what: &'static str) -> Result<T, Failure> {
        self.ok_or(Failure::new(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_say_what_and_why() {
        let e: Result<(), Error> = Err(Error::QuotaExceeded);
        assert_eq!(e.or_fail("making X").unwrap_err().to_string(), "making X: QuotaExceeded");
        assert_eq!(None::<u8>.or_fail("no `self`").unwrap_err().to_string(), "no `self`");
    }
}
