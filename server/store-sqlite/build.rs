// `sqlx::migrate!()` embeds the migrations at compile time; rebuild when they change
// (cargo does not track a proc macro's file reads on stable).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
