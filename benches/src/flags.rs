//! The command line of a benchmark binary, read flag by flag: `-h` or
//! `--help` prints the usage and exits 0; a flag without its value, a value
//! that does not read, or an unknown flag prints what is wrong and the
//! usage and exits 2. A benchmark never panics on its command line.

use std::fmt::Display;
use std::str::FromStr;

/// The flags after the program's name, and the usage printed with `--help`
/// or a mistake.
pub struct Flags {
    usage: &'static str,
    rest: std::iter::Skip<std::env::Args>,
}

impl Flags {
    /// The process's own command line; `usage` is the text `--help` prints
    /// (a line of synopsis, then one line per flag).
    #[must_use]
    pub fn new(usage: &'static str) -> Self {
        Self { usage, rest: std::env::args().skip(1) }
    }

    /// The next flag, or none when the command line is read; `-h` and
    /// `--help` print the usage and end the process.
    pub fn next_flag(&mut self) -> Option<String> {
        let flag = self.rest.next()?;
        if flag == "-h" || flag == "--help" {
            println!("{}", self.usage);
            std::process::exit(0);
        }
        Some(flag)
    }

    /// The value of `flag`, read as a `T`.
    pub fn value<T>(&mut self, flag: &str) -> T
    where
        T: FromStr,
        T::Err: Display,
    {
        let Some(text) = self.rest.next() else { self.fail(&format!("{flag} needs a value")) };
        text.parse().unwrap_or_else(|e| self.fail(&format!("{flag}: {e}: {text}")))
    }

    /// Ends the process for a mistake on the command line: `message`, then
    /// the usage, on stderr; exit code 2.
    pub fn fail(&self, message: &str) -> ! {
        eprintln!("{message}\n\n{}", self.usage);
        std::process::exit(2);
    }

    /// Ends the process for a flag this benchmark does not know.
    pub fn unknown(&self, flag: &str) -> ! {
        self.fail(&format!("unknown flag {flag}"))
    }
}
