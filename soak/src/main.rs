//! `soak`: the fault-injection soak (see the library and docs/reliability.md).
//! Exits 0 when every invariant held, 1 when one broke, 2 on an error of its own.

use clap::Parser;

fn main() {
    let opts = soak::Options::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("soak: {e}");
            std::process::exit(2);
        }
    };
    let code = runtime.block_on(async {
        tokio::select! {
            r = soak::run(opts) => match r {
                Ok(o) if o.passed => 0,
                Ok(_) => {
                    eprintln!("soak: an invariant broke (see the checks above)");
                    1
                }
                Err(e) => {
                    eprintln!("soak: {e:#}");
                    2
                }
            },
            // Dropping the run stops everything it started.
            _ = tokio::signal::ctrl_c() => {
                eprintln!("soak: interrupted");
                130
            }
        }
    });
    drop(runtime);
    std::process::exit(code);
}
