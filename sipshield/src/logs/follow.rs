//! Follows a log file like `tail -F`, by polling.
//!
//! - Starts at the end of an existing file (or at its beginning); a file
//!   that appears later is read from its beginning.
//! - Rename + create (logrotate's default): the path now names another
//!   inode. The old file is read to its end, and kept open for
//!   [`FollowOptions::rotated_grace`] because the writer may append to it
//!   until it reopens its log; the new file is read from its beginning.
//! - copytruncate: the file shrank below what we read, or the bytes just
//!   before our position changed (truncated and already regrown). Lines we
//!   had not read yet are taken from logrotate's copy (`name.1`,
//!   `name-DATE`) when it is there, uncompressed; then the file is read
//!   again from its beginning. Lines written between logrotate's copy and
//!   its truncate are lost: that is inherent to copytruncate.
//! - A partial line waits in a buffer until its newline arrives; when
//!   starting at the end of a file, the line in progress is skipped.
//! - A line longer than [`FollowOptions::max_line_bytes`] is dropped whole
//!   rather than cut, because a cut line can end inside attacker text.
//!
//! The daemon calls [`LogFollower::poll`] on a timer (a tokio interval, e.g.
//! [`DEFAULT_POLL_INTERVAL`]); each call does a few system calls and reads
//! whatever is new, so it is cheap when nothing changed.

use std::fs::{File, Metadata};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A reasonable polling interval for the daemon: bans within a second.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// Bytes compared just before the read position to notice a file that was
/// truncated and regrew past it between two polls.
const FINGERPRINT_BYTES: usize = 64;

const READ_CHUNK: usize = 64 * 1024;

/// Where to begin in a file that already exists when following starts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// Only lines written from now on (`tail -F`).
    #[default]
    End,
    /// The whole file (`--from-start`).
    Beginning,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FollowOptions {
    pub start: StartAt,
    /// How long a rotated-away file keeps being read after it last grew.
    pub rotated_grace: Duration,
    /// Lines longer than this are dropped.
    pub max_line_bytes: usize,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            start: StartAt::End,
            rotated_grace: Duration::from_secs(30),
            max_line_bytes: 64 * 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FollowError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// What a follower has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FollowStats {
    /// Complete lines handed out.
    pub lines: u64,
    /// Bytes read, rotated files included.
    pub bytes: u64,
    /// Rename+create rotations seen.
    pub rotations: u64,
    /// copytruncate rotations seen.
    pub truncations: u64,
    /// copytruncate rotations whose unread lines were read from the copy.
    pub recovered_copies: u64,
    /// Lines dropped for exceeding `max_line_bytes`.
    pub dropped_long_lines: u64,
}

/// Follows one path across rotations. See the module documentation.
#[derive(Debug)]
pub struct LogFollower {
    path: PathBuf,
    options: FollowOptions,
    current: Option<Reader>,
    rotated: Vec<Rotated>,
    stats: FollowStats,
    chunk: Vec<u8>,
}

#[derive(Debug)]
struct Rotated {
    reader: Reader,
    last_growth: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

#[derive(Debug)]
struct Reader {
    file: File,
    id: FileId,
    /// Bytes consumed from the file; the file's cursor is here too.
    offset: u64,
    /// The line in progress.
    partial: Vec<u8>,
    /// Dropping bytes up to the next newline.
    skipping: bool,
    /// The last bytes read (at most `FINGERPRINT_BYTES`), ending at `offset`.
    recent: Vec<u8>,
}

impl LogFollower {
    /// Starts following `path`. A missing file is not an error: it is read
    /// from its beginning once it appears.
    pub fn new(
        path: impl Into<PathBuf>,
        options: FollowOptions,
    ) -> Result<LogFollower, FollowError> {
        let mut follower = LogFollower {
            path: path.into(),
            options,
            current: None,
            rotated: Vec::new(),
            stats: FollowStats::default(),
            chunk: vec![0; READ_CHUNK],
        };
        if let Some(mut reader) = follower.open()? {
            if follower.options.start == StartAt::End {
                reader
                    .skip_to_end()
                    .map_err(|source| follower.read_error(source))?;
            }
            follower.current = Some(reader);
        }
        Ok(follower)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> FollowStats {
        self.stats
    }

    /// Whether a file is open (false while the path does not exist yet).
    pub fn is_open(&self) -> bool {
        self.current.is_some()
    }

    /// Reads every complete line written since the last call.
    pub fn poll(&mut self) -> Result<Vec<String>, FollowError> {
        let mut lines = Vec::new();
        self.poll_lines(|line| lines.push(line.to_owned()))?;
        Ok(lines)
    }

    /// Like [`poll`](Self::poll), handing each line (without its newline) to
    /// `on_line` instead of collecting them. Returns the number of lines.
    pub fn poll_lines(&mut self, mut on_line: impl FnMut(&str)) -> Result<u64, FollowError> {
        let before = self.stats.lines;
        self.drain_rotated(&mut on_line)?;

        match std::fs::metadata(&self.path) {
            Ok(meta) => self.check_path(&meta, &mut on_line)?,
            // Renamed away and not recreated yet: keep reading what we have.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(FollowError::Open {
                    path: self.path.clone(),
                    source,
                })
            }
        }

        if let Some(mut reader) = self.current.take() {
            let result = self.read(&mut reader, &mut on_line);
            self.current = Some(reader);
            result?;
        }
        Ok(self.stats.lines - before)
    }

    /// Notices rotation of either kind, or a file that appeared.
    fn check_path(
        &mut self,
        meta: &Metadata,
        on_line: &mut impl FnMut(&str),
    ) -> Result<(), FollowError> {
        let id = FileId::of(meta);
        match self.current.take() {
            None => self.current = self.open()?,
            Some(mut old) if old.id != id => {
                // Finish the old file first (it may have been truncated
                // before it was renamed), then keep it for late writes.
                self.check_truncation(&mut old, on_line)?;
                self.read(&mut old, on_line)?;
                self.rotated.push(Rotated {
                    reader: old,
                    last_growth: Instant::now(),
                });
                self.stats.rotations += 1;
                self.current = self.open()?;
            }
            Some(mut reader) => {
                let result = self.check_truncation(&mut reader, on_line);
                self.current = Some(reader);
                result?;
            }
        }
        Ok(())
    }

    /// copytruncate: the file is shorter than our position, or the bytes
    /// before it changed. Takes unread lines from the copy, then rewinds.
    fn check_truncation(
        &mut self,
        reader: &mut Reader,
        on_line: &mut impl FnMut(&str),
    ) -> Result<(), FollowError> {
        let len = reader
            .file
            .metadata()
            .map_err(|source| self.read_error(source))?
            .len();
        let truncated = len < reader.offset
            || reader
                .rewritten_before_offset()
                .map_err(|source| self.read_error(source))?;
        if truncated {
            self.recover_from_copy(reader, on_line);
            reader.rewind().map_err(|source| self.read_error(source))?;
            self.stats.truncations += 1;
        }
        Ok(())
    }

    fn drain_rotated(&mut self, on_line: &mut impl FnMut(&str)) -> Result<(), FollowError> {
        let mut rotated = std::mem::take(&mut self.rotated);
        let mut result = Ok(());
        rotated.retain_mut(|old| {
            if result.is_err() {
                return true;
            }
            match self.read(&mut old.reader, on_line) {
                Ok(0) if old.last_growth.elapsed() >= self.options.rotated_grace => {
                    // The writer has moved on; a last line without newline is still a line.
                    self.flush_partial(&mut old.reader, on_line);
                    false
                }
                Ok(0) => true,
                Ok(_) => {
                    old.last_growth = Instant::now();
                    true
                }
                Err(err) => {
                    result = Err(err);
                    true
                }
            }
        });
        self.rotated = rotated;
        result
    }

    /// copytruncate: logrotate copied the file (to `name.1`, `name-20240305`,
    /// ...) before truncating it, so lines we had not read yet are in the
    /// copy. Reads them from there, starting at our position. Best effort:
    /// without a matching uncompressed copy, they are lost, as with `tail -F`.
    fn recover_from_copy(&mut self, truncated: &Reader, on_line: &mut impl FnMut(&str)) {
        let Some(mut copy) = self.find_copy(truncated) else {
            return;
        };
        match self.read(&mut copy, on_line) {
            Ok(_) => self.stats.recovered_copies += 1,
            Err(err) => log::debug!(
                "reading the copy of {} after copytruncate: {err}",
                self.path.display()
            ),
        }
        // An unfinished last line in the copy continues nowhere we can see.
    }

    /// A sibling `name.*` / `name-*` file that holds what we read, byte for
    /// byte up to our position, positioned there.
    fn find_copy(&self, truncated: &Reader) -> Option<Reader> {
        if truncated.recent.is_empty() {
            return None;
        }
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = self.path.file_name()?.as_encoded_bytes();
        let mut candidates = Vec::new();
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let file_name = entry.file_name();
            let Some(suffix) = file_name.as_encoded_bytes().strip_prefix(name) else {
                continue;
            };
            let compressed = [".gz", ".xz", ".bz2", ".zst", ".lz4", ".Z"]
                .iter()
                .any(|ext| suffix.ends_with(ext.as_bytes()));
            if !(suffix.starts_with(b".") || suffix.starts_with(b"-")) || compressed {
                continue;
            }
            match entry.metadata() {
                Ok(meta) if meta.is_file() && meta.len() >= truncated.offset => {
                    candidates.push((meta.modified().ok(), entry.path()));
                }
                _ => {}
            }
        }
        // Newest first: the copy was just made.
        candidates.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        candidates.into_iter().take(4).find_map(|(_, path)| {
            let file = File::open(path).ok()?;
            let id = FileId::of(&file.metadata().ok()?);
            let mut copy = Reader {
                file,
                id,
                offset: truncated.offset,
                partial: truncated.partial.clone(),
                skipping: truncated.skipping,
                recent: truncated.recent.clone(),
            };
            let same = id != truncated.id && !copy.rewritten_before_offset().ok()?;
            copy.file.seek(SeekFrom::Start(copy.offset)).ok()?;
            same.then_some(copy)
        })
    }

    /// Opens the path; `None` if it does not exist (any more).
    fn open(&self) -> Result<Option<Reader>, FollowError> {
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(FollowError::Open {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        // Identify the file we opened, not whatever the path names by now.
        let meta = file.metadata().map_err(|source| self.read_error(source))?;
        Ok(Some(Reader {
            file,
            id: FileId::of(&meta),
            offset: 0,
            partial: Vec::new(),
            skipping: false,
            recent: Vec::with_capacity(FINGERPRINT_BYTES),
        }))
    }

    /// Reads `reader` to its end, handing out complete lines. Returns the
    /// number of bytes read.
    fn read(
        &mut self,
        reader: &mut Reader,
        on_line: &mut impl FnMut(&str),
    ) -> Result<u64, FollowError> {
        let mut total = 0;
        loop {
            let n = match reader.file.read(&mut self.chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(self.read_error(source)),
            };
            reader.offset += n as u64;
            reader.remember(&self.chunk[..n]);
            total += n as u64;
            let mut start = 0;
            for newline in memchr::memchr_iter(b'\n', &self.chunk[..n]) {
                let piece = &self.chunk[start..newline];
                start = newline + 1;
                if std::mem::take(&mut reader.skipping) {
                    continue;
                }
                if reader.partial.len() + piece.len() > self.options.max_line_bytes {
                    reader.partial.clear();
                    self.stats.dropped_long_lines += 1;
                    continue;
                }
                if reader.partial.is_empty() {
                    emit(piece, on_line);
                } else {
                    reader.partial.extend_from_slice(piece);
                    emit(&reader.partial, on_line);
                    reader.partial.clear();
                }
                self.stats.lines += 1;
            }
            let rest = &self.chunk[start..n];
            if !reader.skipping && !rest.is_empty() {
                if reader.partial.len() + rest.len() > self.options.max_line_bytes {
                    reader.partial.clear();
                    reader.skipping = true;
                    self.stats.dropped_long_lines += 1;
                } else {
                    reader.partial.extend_from_slice(rest);
                }
            }
        }
        self.stats.bytes += total;
        Ok(total)
    }

    fn flush_partial(&mut self, reader: &mut Reader, on_line: &mut impl FnMut(&str)) {
        if !reader.partial.is_empty() && !reader.skipping {
            emit(&reader.partial, on_line);
            self.stats.lines += 1;
        }
        reader.partial.clear();
    }

    fn read_error(&self, source: io::Error) -> FollowError {
        FollowError::Read {
            path: self.path.clone(),
            source,
        }
    }
}

fn emit(bytes: &[u8], on_line: &mut impl FnMut(&str)) {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    on_line(&String::from_utf8_lossy(bytes));
}

impl Reader {
    /// Positions at the end, skipping the line in progress if any.
    fn skip_to_end(&mut self) -> io::Result<()> {
        let len = self.file.seek(SeekFrom::End(0))?;
        self.offset = len;
        let known = len.min(FINGERPRINT_BYTES as u64);
        let mut last = [0u8; FINGERPRINT_BYTES];
        let last = &mut last[..known as usize];
        self.file.read_exact_at(last, len - known)?;
        self.remember(last);
        self.skipping = last.last().is_some_and(|b| *b != b'\n');
        Ok(())
    }

    fn remember(&mut self, bytes: &[u8]) {
        let keep = bytes.len().min(FINGERPRINT_BYTES);
        let excess = (self.recent.len() + keep).saturating_sub(FINGERPRINT_BYTES);
        self.recent.drain(..excess);
        self.recent.extend_from_slice(&bytes[bytes.len() - keep..]);
    }

    fn rewind(&mut self) -> io::Result<()> {
        self.file.seek(SeekFrom::Start(0))?;
        self.offset = 0;
        self.partial.clear();
        self.skipping = false;
        self.recent.clear();
        Ok(())
    }

    /// Whether the bytes just before our position differ from what we read
    /// there: the file was truncated and has grown past our position again.
    fn rewritten_before_offset(&self) -> io::Result<bool> {
        let known = self.recent.len();
        if known == 0 {
            return Ok(false);
        }
        let mut now = [0u8; FINGERPRINT_BYTES];
        let now = &mut now[..known];
        match self.file.read_exact_at(now, self.offset - known as u64) {
            Ok(()) => Ok(now[..] != self.recent[..]),
            Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(true),
            Err(err) => Err(err),
        }
    }
}
