//! The README documents every setting the binary accepts.

use warmcache::SETTINGS;

#[test]
fn readme_configuration_table_lists_every_setting() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    for setting in SETTINGS {
        let row = match setting.flag {
            Some(flag) => format!("| `{}` | `--{flag}` |", setting.env),
            None => format!("| `{}` | |", setting.env),
        };
        assert!(
            readme.contains(&row),
            "README.md has no configuration row starting {row}"
        );
    }
}
