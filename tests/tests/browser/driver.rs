//! A headless Chromium per test, driven over WebDriver: [`Chromedriver`] starts
//! Debian's `chromedriver` on a free port (killed when dropped), [`Browser`] is one
//! session with the helpers the tests use. Every wait polls a condition until a
//! deadline through the harness's one wait, [`tests::poll`]; none sleeps blindly.

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long a page has to reach a state the test waits for.
pub const WAIT: Duration = Duration::from_secs(20);
/// Between two looks at the page while waiting.
const POLL: Duration = Duration::from_millis(100);
/// How long chromedriver has to answer `/status` after it starts.
const DRIVER_START: Duration = Duration::from_secs(20);

/// The `chromedriver` binary: `CHROMEDRIVER` or Debian's.
fn chromedriver_path() -> String {
    std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into())
}

/// The Chromium binary: `CHROMIUM` or Debian's.
fn chromium_path() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// A running chromedriver (killed on drop).
pub struct Chromedriver {
    _child: Child,
    pub url: String,
}

impl Chromedriver {
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "chromedriver could not start ({e}): install Debian's chromium and \
                     chromium-driver (scripts/test.sh does) or set CHROMEDRIVER"
                )
            });
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let ready = tests::poll(DRIVER_START, POLL, || async {
            match http.get(format!("{url}/status")).send().await {
                Ok(res) => match res.json::<Value>().await {
                    Ok(v) if v["value"]["ready"] == json!(true) => Ok(()),
                    _ => Err(()),
                },
                Err(_) => Err(()),
            }
        })
        .await;
        assert!(ready.is_ok(), "chromedriver did not become ready");
        Self { _child: child, url }
    }

    /// A new headless browser session with a `width` x `height` window.
    pub async fn browser(&self, base_url: &str, width: u32, height: u32) -> Browser {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium_path(),
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-extensions", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                    "--force-device-scale-factor=1", "--lang=en-IN",
                    format!("--window-size={width},{height}"),
                ],
            }),
        );
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session");
        client
            .set_window_size(width, height)
            .await
            .expect("window size");
        Browser {
            client,
            base: base_url.to_owned(),
        }
    }
}

/// One browser session on the platform at `base`.
pub struct Browser {
    pub client: Client,
    pub base: String,
}

impl Browser {
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigate");
    }

    /// Waits for an element matching `css`.
    pub async fn find(&self, css: &str) -> Element {
        self.client
            .wait()
            .at_most(WAIT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css} within {WAIT:?}: {e}"))
    }

    /// Clicks the element `css`, finding it again when the page redrew it between
    /// the find and the click (a stale element reference).
    pub async fn click(&self, css: &str) {
        let clicked = tests::poll(WAIT, POLL, || async {
            match self.find(css).await.click().await {
                Err(e) if e.is_stale_element_reference() => Err(e),
                Err(e) => panic!("click {css}: {e}"),
                Ok(()) => Ok(()),
            }
        })
        .await;
        clicked.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear().await.expect("clear");
        el.send_keys(text).await.expect("type");
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    pub async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.client.execute(script, args).await.expect("script")
    }

    /// Waits until `script` (a function body returning a value) returns a truthy
    /// value, and returns it; panics with `what` at the deadline.
    pub async fn until(&self, what: &str, script: &str, args: Vec<Value>) -> Value {
        let seen = tests::poll(WAIT, POLL, || async {
            let v = self.js(script, args.clone()).await;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!("") && v != json!(0);
            if truthy { Ok(v) } else { Err(()) }
        })
        .await;
        match seen {
            Ok(v) => v,
            Err(()) => {
                let text = self.js("return document.body.innerText", vec![]).await;
                panic!("timed out waiting for {what}; the page says:\n{text}");
            }
        }
    }

    /// Waits until the text of `css` contains `needle` (case-insensitive); returns it.
    pub async fn text_contains(&self, css: &str, needle: &str) -> String {
        let v = self
            .until(
                &format!("{css} to say {needle:?}"),
                "const el = document.querySelector(arguments[0]);
                 const t = el ? el.innerText : '';
                 return t.toLowerCase().includes(arguments[1].toLowerCase()) ? t : null;",
                vec![json!(css), json!(needle)],
            )
            .await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The accessible name (`aria-label`) of seat `id` on the seat map, once drawn.
    pub async fn seat_label(&self, id: &str) -> String {
        let css = format!("button.seat[data-seat='{id}']");
        self.find(&css)
            .await
            .attr("aria-label")
            .await
            .expect("attr")
            .unwrap_or_default()
    }

    /// Saves a screenshot as `<target>/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Every URL the page loaded (scripts, styles, images, API calls).
    pub async fn resource_urls(&self) -> Vec<String> {
        let v = self
            .js(
                "return [location.href, ...performance.getEntriesByType('resource').map(e => e.name)]",
                vec![],
            )
            .await;
        v.as_array()
            .unwrap()
            .iter()
            .map(|u| u.as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Asserts that the page requested nothing from a host other than the platform's
    /// (`data:` images are inline, not requests).
    pub async fn assert_only_own_origin(&self) {
        for url in self.resource_urls().await {
            assert!(
                url.starts_with(&format!("{}/", self.base)) || url.starts_with("data:"),
                "the page requested {url}, which is not {}",
                self.base
            );
        }
    }

    pub async fn close(self) {
        drop(self.client.close().await);
    }
}

/// `<target dir>/screenshots` (`CARGO_TARGET_DIR` or the workspace's `target`).
pub fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("screenshots")
}
