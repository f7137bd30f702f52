//! The web benchmark (not a timed test: `#[ignore]`d, run by `scripts/bench-web.sh`,
//! figures in BENCHMARKS.md): the seat page of a 500-seat show in headless Chromium
//! on this box, cold (a new browser profile, nothing cached) and warm (a reload:
//! every asset revalidated, `304`), five times each; first contentful paint, the
//! moment the seat map is interactive (the page's `seatmap-interactive` mark: every
//! seat a button), and the JavaScript and CSS the page ships, compressed on the wire
//! and as files. Home and the movie page are weighed too.

use crate::driver::{Browser, Chromedriver};
use serde_json::{Value, json};
use tests::{SystemOptions, spawn_system};

const RUNS: usize = 5;

/// What one load of the page at `path` measured.
struct Load {
    fcp_ms: f64,
    interactive_ms: Option<f64>,
    /// Scripts and style sheets: bytes on the wire (headers and gzip body) and
    /// the files' own sizes.
    wire: f64,
    files: f64,
    requests: usize,
}

async fn measure(b: &Browser, ready: &str) -> Load {
    b.until(
        "the page to be ready",
        "return document.querySelectorAll(arguments[0]).length > 0 && performance.getEntriesByName('first-contentful-paint').length > 0;",
        vec![json!(ready)],
    )
    .await;
    let v: Value = b
        .js(
            "const assets = performance.getEntriesByType('resource')
                 .filter((r) => /\\.(js|css)(\\?|$)/.test(r.name));
             const mark = performance.getEntriesByName('seatmap-interactive')[0];
             return {
               fcp: performance.getEntriesByName('first-contentful-paint')[0].startTime,
               interactive: mark ? mark.startTime : null,
               wire: assets.reduce((n, r) => n + r.transferSize, 0),
               files: assets.reduce((n, r) => n + r.decodedBodySize, 0),
               requests: assets.length,
             };",
            vec![],
        )
        .await;
    Load {
        fcp_ms: v["fcp"].as_f64().unwrap(),
        interactive_ms: v["interactive"].as_f64(),
        wire: v["wire"].as_f64().unwrap(),
        files: v["files"].as_f64().unwrap(),
        requests: v["requests"].as_u64().unwrap() as usize,
    }
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn report(page: &str, kind: &str, loads: &[Load]) {
    let interactive: Vec<f64> = loads.iter().filter_map(|l| l.interactive_ms).collect();
    println!(
        "{page:<12} {kind:<5} first paint {:>6.0} ms  interactive {:>6}  js+css {:>3} files, {:>6.1} KB on the wire, {:>6.1} KB as files",
        median(loads.iter().map(|l| l.fcp_ms).collect()),
        if interactive.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.0} ms", median(interactive))
        },
        loads[0].requests,
        median(loads.iter().map(|l| l.wire).collect()) / 1024.0,
        median(loads.iter().map(|l| l.files).collect()) / 1024.0,
    );
}

#[tokio::test]
#[ignore = "a benchmark: scripts/bench-web.sh"]
async fn web_pages_first_paint_interactive_and_weight() {
    let sys = spawn_system(SystemOptions::default()).await;
    // 20 rows of 25 seats.
    let show = sys.show(20, 25).await;
    let (movie,): (uuid::Uuid,) = sqlx::query_as("select movie_id from shows where id = $1")
        .bind(show.0)
        .fetch_one(&sys.pool)
        .await
        .unwrap();
    let driver = Chromedriver::start().await;
    println!(
        "web benchmark: median of {RUNS} loads each, headless Chromium 1280x900; cold = a new profile, warm = a reload"
    );
    let pages = [
        ("seat page", format!("/shows/{show}"), "button.seat"),
        ("movie page", format!("/movies/{movie}"), "h1"),
        ("home", "/".to_owned(), "h1"),
    ];
    for (name, path, ready) in pages {
        let (mut cold, mut warm) = (vec![], vec![]);
        for _ in 0..RUNS {
            let b = driver.browser(&sys.base_url, 1280, 900).await;
            b.goto(&path).await;
            cold.push(measure(&b, ready).await);
            b.js("location.reload()", vec![]).await;
            // The reload's own entries: wait for the new document.
            b.until(
                "the reloaded page",
                "return performance.getEntriesByType('navigation')[0]?.type === 'reload' && document.readyState === 'complete';",
                vec![],
            )
            .await;
            warm.push(measure(&b, ready).await);
            b.close().await;
        }
        if name == "seat page" {
            let seats = cold.iter().all(|l| l.interactive_ms.is_some());
            assert!(seats, "the seat page marks when its map is interactive");
        }
        report(name, "cold", &cold);
        report(name, "warm", &warm);
        // The budget: under 150 KB of JavaScript and CSS, compressed.
        let wire = median(cold.iter().map(|l| l.wire).collect());
        assert!(wire < 150.0 * 1024.0, "{name}: {wire} bytes of js+css");
    }
    sys.shutdown().await;
}
