//! A moto server (Python) on 127.0.0.1 for the STS tests, shared by every test of the process.
//!
//! Started on a free port at first use; it stops when this test process exits, because the
//! wrapper script waits on its stdin and this process holds the other end of that pipe. Tests
//! are skipped, with the reason printed, only when `python3` or `moto` is missing.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Starts moto's threaded server and serves until stdin closes.
const WRAPPER: &str = r#"
import sys
from moto.server import ThreadedMotoServer
server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print("ready", flush=True)
sys.stdin.read()
server.stop()
"#;

const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

struct Running {
    _child: Child,
    _stdin: ChildStdin,
}

static SERVER: OnceLock<Result<u16, String>> = OnceLock::new();
static PROCESS: Mutex<Option<Running>> = Mutex::new(None);

/// The moto port, or why moto cannot run here (printed by the caller, which then skips).
pub(crate) fn port() -> Result<u16, String> {
    SERVER.get_or_init(start).clone()
}

/// `http://127.0.0.1:PORT`, or `None` after printing why the test is skipped.
pub(crate) fn endpoint(test: &str) -> Option<String> {
    match port() {
        Ok(port) => Some(format!("http://127.0.0.1:{port}")),
        Err(reason) => {
            eprintln!("SKIPPED {test}: {reason}");
            None
        }
    }
}

fn start() -> Result<u16, String> {
    let probe = Command::new("python3")
        .args(["-c", "import moto.server, botocore"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    match probe {
        Err(_) => return Err("python3 is not installed".into()),
        Ok(status) if !status.success() => {
            return Err("the Python package moto (with its server extra) is not installed".into());
        }
        Ok(_) => {}
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let mut child = Command::new("python3")
        .args(["-c", WRAPPER, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("python3 could not start: {e}"))?;
    let stdin = child.stdin.take().expect("piped stdin");
    let stdout = child.stdout.take().expect("piped stdout");
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = ready_tx.send(line);
    });
    let line = ready_rx
        .recv_timeout(STARTUP_TIMEOUT)
        .map_err(|_| "moto did not start in time".to_string())?;
    assert_eq!(line.trim(), "ready", "moto failed to start");
    let deadline = Instant::now() + STARTUP_TIMEOUT;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto is not listening on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
    *PROCESS.lock().unwrap() = Some(Running {
        _child: child,
        _stdin: stdin,
    });
    Ok(port)
}
