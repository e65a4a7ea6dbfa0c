//! A node's `config.toml` (`node/src/config.rs`): within its size limit, and what is accepted
//! is accepted again, equal, from TOML written for it, both serde's and the commented file
//! `hutong init` writes (which leaves out the test-only switches).
#![no_main]

use std::path::Path;

use hutong_fuzz::config::Config;
use hutong_fuzz::heap;
use hutong_fuzz::limits::CONFIG_FILE_BYTES_MAX;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("config.toml");
    let Ok(config) = heap::bounded(data, |bytes| Config::parse(path, bytes)) else {
        return;
    };
    assert!(data.len() <= CONFIG_FILE_BYTES_MAX);
    let plain = toml::to_string(&config).expect("a parsed configuration serialises");
    let again = Config::parse(path, plain.as_bytes()).expect("its own TOML reads");
    assert_eq!(again, config);
    let commented = config.to_commented_toml();
    let mut written = Config::parse(path, commented.as_bytes()).unwrap_or_else(|error| {
        panic!("the file `hutong init` would write does not read: {error}\n{commented}")
    });
    written.testing = config.testing.clone();
    assert_eq!(written, config);
});
