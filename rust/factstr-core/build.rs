//! Compiles the C half of the SQLite file locks (src/sqlite/file_locks.c), Linux only.
fn main() {
    println!("cargo:rerun-if-changed=src/sqlite/file_locks.c");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        cc::Build::new()
            .file("src/sqlite/file_locks.c")
            .warnings(true)
            .compile("factstr_file_locks");
    }
}
