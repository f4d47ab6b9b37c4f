//! The `ogx` binary: see [`ogx::cli`].

fn main() -> std::process::ExitCode {
    ogx::cli::main()
}
