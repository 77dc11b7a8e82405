#![allow(clippy::unwrap_used, clippy::expect_used)] // a measuring program: a panic is a failed run
fn main() {
    for f in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        println!("== {f}");
        match fhir_search_index::extract(&v, &Default::default()) {
            Ok(rows) => {
                for r in rows {
                    println!("  {} {:?}", r.code, r.value);
                }
            }
            Err(e) => println!("  ERR {e}"),
        }
    }
}
