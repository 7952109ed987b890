//! The CLI side of the control socket (blocking).

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use super::{ControlError, Request, Response};

/// Sends one request and waits (bounded) for its response.
pub fn request(socket: &Path, req: &Request) -> Result<Response, ControlError> {
    let io = io_error(socket);
    let stream = send(socket, req, Some(Duration::from_secs(10)))?;
    let mut reply = String::new();
    BufReader::new(&stream).read_line(&mut reply).map_err(io)?;
    if reply.is_empty() {
        return Err(ControlError::Protocol(
            "the daemon closed the connection".into(),
        ));
    }
    serde_json::from_str(&reply).map_err(|e| ControlError::Protocol(e.to_string()))
}

/// Sends `req` and hands every line the daemon writes back to `on_line`,
/// the response first, until the daemon closes or `on_line` says stop.
pub fn stream(
    socket: &Path,
    req: &Request,
    mut on_line: impl FnMut(&str) -> bool,
) -> Result<(), ControlError> {
    let io = io_error(socket);
    let stream = send(socket, req, None)?;
    let mut reader = BufReader::new(&stream);
    loop {
        let mut got = String::new();
        if reader.read_line(&mut got).map_err(&io)? == 0 {
            return Ok(());
        }
        if !on_line(got.trim_end()) {
            return Ok(());
        }
    }
}

fn io_error(socket: &Path) -> impl Fn(std::io::Error) -> ControlError {
    let shown = socket.display().to_string();
    move |source| ControlError::Io {
        path: shown.clone(),
        source,
    }
}

/// Connects (a missing or refusing socket: the daemon is not running) and
/// writes `req` as one line; `read_timeout` for the answers.
fn send(
    socket: &Path,
    req: &Request,
    read_timeout: Option<Duration>,
) -> Result<UnixStream, ControlError> {
    let io = io_error(socket);
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning(socket.display().to_string()));
        }
        Err(e) => return Err(io(e)),
    };
    stream.set_read_timeout(read_timeout).map_err(&io)?;
    let mut line = serde_json::to_string(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    Ok(stream)
}
