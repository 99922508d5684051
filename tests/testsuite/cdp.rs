//! A small Chrome DevTools Protocol client: headless Chromium started with a debugging port
//! on 127.0.0.1, driven over its WebSocket to type, press keys, read the page and take
//! screenshots, as a person at a keyboard would.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

pub(crate) struct Browser {
    child: Child,
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// Events read while waiting for a reply.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub(crate) fn launch(chromium: &Path) -> Browser {
        let profile = tempfile::tempdir().expect("profile");
        let child = Command::new(chromium)
            .args(crate::browser::CHROMIUM_FLAGS)
            .args(["--remote-debugging-port=0", "--window-size=1280,1600"])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromium");
        let port_file = profile.path().join("DevToolsActivePort");
        let started = Instant::now();
        let port = loop {
            if let Some(port) = std::fs::read_to_string(&port_file)
                .ok()
                .and_then(|t| t.lines().next().map(str::to_owned))
                .filter(|p| !p.is_empty())
            {
                break port;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "chromium did not open its debugging port"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let listing = ureq::get(&format!("http://127.0.0.1:{port}/json/list"))
            .call()
            .expect("list targets")
            .body_mut()
            .read_to_string()
            .expect("targets");
        let targets: Value = serde_json::from_str(&listing).expect("targets json");
        let url = targets
            .as_array()
            .and_then(|t| t.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (ws, _) = tungstenite::connect(url.as_str()).expect("devtools websocket");
        let mut browser = Browser {
            child,
            ws,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        browser.call("Page.enable", json!({}));
        browser.call("Runtime.enable", json!({}));
        browser
    }

    fn read(&mut self) -> Value {
        loop {
            match self.ws.read().expect("devtools message") {
                Message::Text(text) => return serde_json::from_str(text.as_str()).expect("json"),
                Message::Close(_) => panic!("devtools closed"),
                _ => {}
            }
        }
    }

    /// Calls `method` and returns its result.
    pub(crate) fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws.send(Message::Text(message.into())).expect("send");
        loop {
            let m = self.read();
            if m["id"] == id {
                assert!(m.get("error").is_none(), "{method}: {m}");
                return m["result"].clone();
            }
            self.events.push(m);
        }
    }

    /// Waits for the event `name`, including one that already came.
    pub(crate) fn wait_for(&mut self, name: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["method"] == name) {
            return self.events.remove(i);
        }
        loop {
            let m = self.read();
            if m["method"] == name {
                return m;
            }
            self.events.push(m);
        }
    }

    /// Forgets the events seen so far (before an action whose events are awaited).
    pub(crate) fn clear_events(&mut self) {
        self.events.clear();
    }

    pub(crate) fn navigate(&mut self, url: &str) {
        self.events.clear();
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for("Page.loadEventFired");
    }

    /// The value of a JavaScript expression (promises awaited).
    /// Evaluates `expression` until it gives `expected` (up to 5 s), and returns what it
    /// gave last: for what the browser does after the load event, such as `autofocus`,
    /// which it applies at its next rendering update.
    pub(crate) fn eval_until(&mut self, expression: &str, expected: &str) -> Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let value = self.eval(expression);
            if value == expected || std::time::Instant::now() > deadline {
                return value;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
    }

    pub(crate) fn eval(&mut self, expression: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Types `text` into the focused field (as an IME commits it).
    pub(crate) fn type_text(&mut self, text: &str) {
        self.call("Input.insertText", json!({"text": text}));
    }

    pub(crate) fn press(&mut self, key: &str, code: &str, key_code: u32, text: &str) {
        for kind in ["keyDown", "keyUp"] {
            let mut params =
                json!({"type": kind, "key": key, "code": code, "windowsVirtualKeyCode": key_code});
            if kind == "keyDown" && !text.is_empty() {
                params["text"] = Value::from(text);
            }
            self.call("Input.dispatchKeyEvent", params);
        }
    }

    pub(crate) fn press_tab(&mut self) {
        self.press("Tab", "Tab", 9, "");
    }

    pub(crate) fn press_enter(&mut self) {
        self.press("Enter", "Enter", 13, "\r");
    }

    pub(crate) fn screenshot(&mut self, path: &Path) {
        let r = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("data"))
            .expect("base64");
        std::fs::write(path, png).expect("write screenshot");
    }

    pub(crate) fn print_to_pdf(&mut self, path: &Path) {
        let r = self.call(
            "Page.printToPDF",
            json!({"printBackground": true, "displayHeaderFooter": false, "preferCSSPageSize": true}),
        );
        let pdf = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().expect("data"))
            .expect("base64");
        std::fs::write(path, pdf).expect("write pdf");
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
