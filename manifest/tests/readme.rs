//! The README's table of capabilities is the one the code asks for: a friend
//! reading it before approving Element's dialog reads every line, in order.

#[test]
fn the_readme_explains_every_capability_in_the_order_element_shows_them() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md beside the workspace");
    // The table sits in a numbered step, indented.
    let readme: String = readme
        .lines()
        .map(|line| line.trim_start().to_owned() + "\n")
        .collect();
    let table = manifest::capabilities::markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's capability table is out of date; replace it with the output of \
         `cargo run -p potluck-manifest --bin potluck-capabilities -- --markdown`:\n{table}"
    );
}
