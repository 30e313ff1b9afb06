//! A policy file (TOML). A policy that parses must render and parse again
//! to the same hash: the canonical form is a fixed point.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(loaded) = kgate_policy::Policy::parse(text, "fuzz.toml") {
        let again = kgate_policy::Policy::parse(&loaded.policy.to_toml(), "fuzz.toml")
            .expect("the canonical form of a valid policy parses");
        assert_eq!(again.policy.hash(), loaded.policy.hash());
    }
});
