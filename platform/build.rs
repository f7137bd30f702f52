// `sqlx::migrate!` embeds `migrations/` at compile time; without this, a new
// migration file does not rebuild the crate and binaries run without it.
fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
