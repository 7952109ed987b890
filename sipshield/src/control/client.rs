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
    let shown = socket.display().to_string();
    let io = |source| ControlError::Io {
        path: shown.clone(),
        source,
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning(shown));
        }
        Err(e) => return Err(io(e)),
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut line = serde_json::to_string(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
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
    let shown = socket.display().to_string();
    let io = |source| ControlError::Io {
        path: shown.clone(),
        source,
    };
    let mut stream = match UnixStream::connect(socket) {
        Ok(s) => s,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Err(ControlError::NotRunning(shown));
        }
        Err(e) => return Err(io(e)),
    };
    let mut line = serde_json::to_string(req).map_err(|e| ControlError::Protocol(e.to_string()))?;
    line.push('\n');
    stream.write_all(line.as_bytes()).map_err(io)?;
    let mut reader = BufReader::new(&stream);
    loop {
        let mut got = String::new();
        if reader.read_line(&mut got).map_err(io)? == 0 {
            return Ok(());
        }
        if !on_line(got.trim_end()) {
            return Ok(());
        }
    }
}
