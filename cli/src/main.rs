//! `cpo`: the command line of CPO.

fn main() {
    println!("cpo");
}
