//! The live lines of the terminal view: one per running task and one per wait, drawn together
//! below the printed lines and redrawn in place.
//!
//! One `MultiProgress` owns every live line. Lines drawn on their own (one spinner per task)
//! tear each other: each redraws where the cursor happens to be and leaves the others' old
//! lines frozen on the screen. Through one owner, the tick threads and the printed lines take
//! turns, and printed lines always go above the live ones.
//!
//! A live line never wraps. The part of it that grows (the task and its latest activity) is
//! indicatif's `wide_msg`, cut to the terminal's width at every draw (so a narrower window cuts
//! more), and the rest has a fixed width. A wrapped line breaks the redraw in place as soon as
//! the terminal and indicatif count its rows differently (after a resize, say), and its copies
//! then pile up on the screen.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::plan::TaskId;

/// How often the spinners turn and the clocks move.
const TICK: Duration = Duration::from_millis(200);

/// Two waits ending this close together are one wait.
const SAME_MOMENT: Duration = Duration::from_secs(1);

/// The live lines on a terminal.
pub(super) struct Live {
    multi: MultiProgress,
    /// `None` draws only when something changes (tests: no tick threads, no timing).
    tick: Option<Duration>,
    /// One line per running task, in the order they started; above the waits.
    tasks: HashMap<TaskId, ProgressBar>,
    /// baton's waits (back-off, usage limit, breaker), one line per reason.
    waits: Vec<Wait>,
    /// Whether live lines are on the screen, for [`Stdout`]; `None` for other targets.
    shown: Option<Arc<AtomicBool>>,
    /// Whether the clocks are painted (stdout gets colour; never for other targets).
    colour: bool,
}

struct Wait {
    reason: String,
    until: jiff::Timestamp,
    bar: ProgressBar,
}

impl Live {
    /// Live lines on stdout, when stdout is a terminal that can move its cursor; `None` for a
    /// pipe, a file or `TERM=dumb` (the view is then line-based).
    pub fn stdout() -> Option<Live> {
        if ProgressDrawTarget::stdout().is_hidden() {
            return None;
        }
        let shown = Arc::new(AtomicBool::new(false));
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(Stdout { shown: shown.clone() }), 20);
        let mut live = Live::new(target, Some(TICK));
        live.shown = Some(shown);
        live.colour = super::style::enabled(super::style::Stream::Stdout);
        Some(live)
    }

    pub fn new(target: ProgressDrawTarget, tick: Option<Duration>) -> Live {
        Live {
            multi: MultiProgress::with_draw_target(target),
            tick,
            tasks: HashMap::new(),
            waits: Vec::new(),
            shown: None,
            colour: false,
        }
    }

    /// Tells [`Stdout`] whether a draw now ends with a live line.
    fn set_shown(&self) {
        if let Some(shown) = &self.shown {
            shown.store(!self.tasks.is_empty() || !self.waits.is_empty(), Ordering::Relaxed);
        }
    }

    /// A line for a task that has just started, below the other tasks and above the waits;
    /// its clock starts now.
    pub fn start(&mut self, task: &TaskId, text: &str) {
        self.end(task);
        if let Some(shown) = &self.shown {
            shown.store(true, Ordering::Relaxed);
        }
        let bar = self.multi.insert_from_back(self.waits.len(), ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()));
        let colour = self.colour;
        bar.set_style(style("{spinner} {elapsed:>6}  {wide_msg}").with_key("elapsed", move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&painted_clock(colour, s.elapsed()));
        }));
        bar.set_message(text.to_owned());
        self.animate(&bar);
        self.tasks.insert(task.clone(), bar);
    }

    /// The task's line now reads `text`.
    pub fn update(&self, task: &TaskId, text: &str) {
        if let Some(bar) = self.tasks.get(task) {
            bar.set_message(text.to_owned());
        }
    }

    /// The task's line goes away.
    pub fn end(&mut self, task: &TaskId) {
        if let Some(bar) = self.tasks.remove(task) {
            self.remove(&bar);
        }
    }

    /// A line for a wait, with the time left. A wait for the same reason, or to the same
    /// moment, is the same wait told again (the engine re-tells a breaker's wait, whose reason
    /// says the time left, each time it looks for a task to start): it takes over that line.
    pub fn wait(&mut self, reason: &str, text: &str, until: jiff::Timestamp) {
        let same_end = |w: &Wait| w.until.duration_since(until).unsigned_abs() <= SAME_MOMENT;
        let known = self.waits.iter_mut().find(|w| w.reason == reason || same_end(w));
        let new = known.is_none();
        let bar = match known {
            Some(w) => {
                w.until = until;
                reason.clone_into(&mut w.reason);
                w.bar.clone()
            }
            None => {
                if let Some(shown) = &self.shown {
                    shown.store(true, Ordering::Relaxed);
                }
                self.multi.add(ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden()))
            }
        };
        let colour = self.colour;
        bar.set_style(style("… {left:>6}  {wide_msg}").with_key("left", move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
            // Past the end (the engine has not moved on yet) reads as no time left.
            let left = until.duration_since(jiff::Timestamp::now());
            let _ = w.write_str(&painted_clock(colour, Duration::try_from(left).unwrap_or_default()));
        }));
        bar.set_message(text.to_owned());
        if new {
            self.animate(&bar);
            self.waits.push(Wait { reason: reason.to_owned(), until, bar });
        }
    }

    /// Waits that are over (within `slack` of their end) go away.
    pub fn expire(&mut self, now: jiff::Timestamp, slack: Duration) {
        // A wait already past its end has a negative time left, which does not convert.
        let (over, waits): (Vec<Wait>, Vec<Wait>) =
            self.waits.drain(..).partition(|w| Duration::try_from(w.until.duration_since(now)).map_or(true, |left| left <= slack));
        self.waits = waits;
        for w in over {
            self.remove(&w.bar);
        }
    }

    /// Prints `text` above the live lines.
    pub fn println(&self, text: &str) {
        let _ = self.multi.println(text);
    }

    /// Runs `f` (which writes to the terminal itself) with the live lines out of its way.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.multi.suspend(f)
    }

    /// Every live line goes away.
    pub fn clear(&mut self) {
        let tasks: Vec<ProgressBar> = self.tasks.drain().map(|(_, bar)| bar).collect();
        let waits: Vec<ProgressBar> = self.waits.drain(..).map(|w| w.bar).collect();
        for bar in tasks.iter().chain(&waits) {
            self.remove(bar);
        }
    }

    fn animate(&self, bar: &ProgressBar) {
        match self.tick {
            Some(every) => bar.enable_steady_tick(every),
            None => bar.tick(),
        }
    }

    fn remove(&self, bar: &ProgressBar) {
        // Cleared first: removing alone leaves the line on the screen until the next draw.
        bar.finish_and_clear();
        self.multi.remove(bar);
        self.set_shown();
    }
}

impl Drop for Live {
    /// A view dropped without `finish` (an error path) leaves no line behind: a dropped bar
    /// would otherwise stay on the screen as it last was.
    fn drop(&mut self) {
        self.clear();
    }
}

/// The terminal on stdout, as indicatif's own, except that a draw that ends with a live line
/// leaves the cursor at its start instead of past its end. indicatif pads that line to the full
/// width, which leaves a real terminal waiting to wrap: the `^C` the terminal echoes at a Ctrl+C
/// (or any key typed) would then wrap to a new row, the next redraw would start one row too
/// low, and the top live line would stay frozen on the screen. At the line's start, an echo
/// only overwrites what the next draw clears anyway. A draw of printed lines alone keeps the
/// wait to wrap: what comes next must go below them.
#[derive(Debug)]
struct Stdout {
    shown: Arc<AtomicBool>,
}

impl Stdout {
    /// Written and flushed at once, as console's unbuffered terminal does: a line on stderr
    /// (between a clear and a redraw) must not overtake escapes still in stdout's buffer.
    fn write(s: &str) -> std::io::Result<()> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(s.as_bytes())?;
        out.flush()
    }

    /// Rows and columns of the terminal on stdout; a common size when it will not say.
    fn size() -> (u16, u16) {
        // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we own; on failure it writes
        // nothing and the zeroes below stand.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
        match (ok, ws.ws_row, ws.ws_col) {
            (true, rows, cols) if rows > 0 && cols > 0 => (rows, cols),
            _ => (24, 80),
        }
    }
}

impl indicatif::TermLike for Stdout {
    fn width(&self) -> u16 {
        Stdout::size().1
    }

    fn height(&self) -> u16 {
        Stdout::size().0
    }

    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Stdout::write(&format!("\x1b[{n}A")) } else { Ok(()) }
    }

    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Stdout::write(&format!("\x1b[{n}B")) } else { Ok(()) }
    }

    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Stdout::write(&format!("\x1b[{n}C")) } else { Ok(()) }
    }

    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Stdout::write(&format!("\x1b[{n}D")) } else { Ok(()) }
    }

    fn write_line(&self, s: &str) -> std::io::Result<()> {
        Stdout::write(&format!("{s}\n"))
    }

    fn write_str(&self, s: &str) -> std::io::Result<()> {
        Stdout::write(s)
    }

    fn clear_line(&self) -> std::io::Result<()> {
        Stdout::write("\r\x1b[2K")
    }

    fn flush(&self) -> std::io::Result<()> {
        // Every draw ends with a flush: back to the live line's start (see above).
        if self.shown.load(Ordering::Relaxed) { Stdout::write("\r") } else { Ok(()) }
    }
}

/// A style from one of the constant templates above.
fn style(template: &str) -> ProgressStyle {
    // The templates are constants that parse; the fallback only keeps a typo from panicking.
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

/// A live line's clock, faint with colour (see `report::style`).
fn painted_clock(colour: bool, d: Duration) -> String {
    super::style::paint_when(colour, super::style::Role::Faint, &clock(d))
}

/// `41s`, `1m 05s`, `1h 02m`: a clock that moves by whole seconds, calmer than
/// [`super::event::human`]'s tenths.
fn clock(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
pub(super) mod screen {
    //! A terminal in memory, for tests: the few cursor moves indicatif makes, with a real
    //! terminal's automatic wrap at the right margin, and every row ever written kept (the
    //! scrollback), so that a line left behind or wrapped shows.

    use std::io;
    use std::sync::{Arc, Mutex, MutexGuard};

    use indicatif::{ProgressDrawTarget, TermLike};

    #[derive(Debug, Clone)]
    pub struct Screen(Arc<Mutex<Grid>>);

    #[derive(Debug)]
    struct Grid {
        width: usize,
        rows: Vec<Vec<char>>,
        row: usize,
        col: usize,
        /// A character was written in the last column: the next one goes to the next row (as
        /// on a VT100; a cursor move or a carriage return cancels it).
        wrap_next: bool,
    }

    impl Screen {
        pub fn new(width: u16) -> Screen {
            Screen(Arc::new(Mutex::new(Grid {
                width: usize::from(width),
                rows: vec![Vec::new()],
                row: 0,
                col: 0,
                wrap_next: false,
            })))
        }

        pub fn target(&self) -> ProgressDrawTarget {
            ProgressDrawTarget::term_like(Box::new(self.clone()))
        }

        /// Every row, without trailing blanks; trailing empty rows left out.
        pub fn rows(&self) -> Vec<String> {
            let grid = self.grid();
            let mut rows: Vec<String> = grid.rows.iter().map(|r| r.iter().collect::<String>().trim_end().to_owned()).collect();
            while rows.last().is_some_and(String::is_empty) {
                rows.pop();
            }
            rows
        }

        fn grid(&self) -> MutexGuard<'_, Grid> {
            self.0.lock().unwrap_or_else(|p| p.into_inner())
        }
    }

    impl Grid {
        fn put(&mut self, c: char) {
            match c {
                '\r' => {
                    self.col = 0;
                    self.wrap_next = false;
                }
                '\n' => {
                    self.down(1);
                    self.col = 0;
                }
                c => {
                    if self.wrap_next {
                        self.down(1);
                        self.col = 0;
                    }
                    let width = self.width;
                    let row = &mut self.rows[self.row];
                    if row.len() <= self.col {
                        row.resize(self.col + 1, ' ');
                    }
                    row[self.col] = c;
                    if self.col + 1 >= width {
                        self.wrap_next = true;
                    } else {
                        self.col += 1;
                    }
                }
            }
        }

        fn down(&mut self, n: usize) {
            self.row += n;
            if self.rows.len() <= self.row {
                self.rows.resize(self.row + 1, Vec::new());
            }
            self.wrap_next = false;
        }
    }

    impl TermLike for Screen {
        fn width(&self) -> u16 {
            u16::try_from(self.grid().width).unwrap_or(u16::MAX)
        }

        fn height(&self) -> u16 {
            40
        }

        fn move_cursor_up(&self, n: usize) -> io::Result<()> {
            if n == 0 {
                return Ok(()); // console sends nothing: a real terminal reads 0 as 1
            }
            let mut g = self.grid();
            g.row = g.row.saturating_sub(n);
            g.wrap_next = false;
            Ok(())
        }

        fn move_cursor_down(&self, n: usize) -> io::Result<()> {
            if n == 0 {
                return Ok(()); // console sends nothing: a real terminal reads 0 as 1
            }
            self.grid().down(n);
            Ok(())
        }

        fn move_cursor_right(&self, n: usize) -> io::Result<()> {
            if n == 0 {
                return Ok(()); // console sends nothing: a real terminal reads 0 as 1
            }
            let mut g = self.grid();
            g.col = (g.col + n).min(g.width.saturating_sub(1));
            g.wrap_next = false;
            Ok(())
        }

        fn move_cursor_left(&self, n: usize) -> io::Result<()> {
            if n == 0 {
                return Ok(()); // console sends nothing: a real terminal reads 0 as 1
            }
            let mut g = self.grid();
            g.col = g.col.saturating_sub(n);
            g.wrap_next = false;
            Ok(())
        }

        fn write_line(&self, s: &str) -> io::Result<()> {
            self.write_str(s)?;
            self.write_str("\n")
        }

        fn write_str(&self, s: &str) -> io::Result<()> {
            let mut g = self.grid();
            for c in s.chars() {
                g.put(c);
            }
            Ok(())
        }

        fn clear_line(&self) -> io::Result<()> {
            let mut g = self.grid();
            let row = g.row;
            g.rows[row].clear();
            g.col = 0;
            g.wrap_next = false;
            Ok(())
        }

        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::screen::Screen;
    use super::*;

    fn id(s: &str) -> TaskId {
        TaskId::from(s)
    }

    #[test]
    fn clock_moves_by_whole_seconds() {
        assert_eq!(clock(Duration::from_millis(900)), "0s");
        assert_eq!(clock(Duration::from_secs(41)), "41s");
        assert_eq!(clock(Duration::from_secs(65)), "1m 05s");
        assert_eq!(clock(Duration::from_secs(3720)), "1h 02m");
    }

    #[test]
    fn a_wait_told_again_keeps_one_line_and_goes_when_over() {
        let screen = Screen::new(80);
        let mut live = Live::new(screen.target(), None);
        let now = jiff::Timestamp::now();
        let later = now + Duration::from_secs(600);
        live.wait("breaker open", "breaker open; waiting", later);
        live.wait("breaker open, 9m 59s left", "breaker open, 9m 59s left; waiting", later);
        live.wait("breaker open, 9m 59s left", "breaker open; waiting longer", later + Duration::from_secs(60));
        live.start(&id("T1"), "T1 one");
        let rows = screen.rows();
        assert_eq!(rows.len(), 2, "{rows:#?}");
        assert!(rows[0].contains("T1 one"), "tasks above waits: {rows:#?}");
        assert!(rows[1].starts_with('…') && rows[1].ends_with("breaker open; waiting longer"), "{rows:#?}");

        live.expire(now, Duration::ZERO);
        assert_eq!(screen.rows().len(), 2, "not over yet");
        live.expire(later + Duration::from_secs(59), Duration::from_secs(1));
        assert_eq!(screen.rows(), [rows[0].clone()], "over within the slack");
    }
}
