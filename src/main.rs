//! The `sipidx` binary: parse arguments, run, exit. All work lives in the library.
fn main() -> std::process::ExitCode {
    sipidx::cli::main()
}
