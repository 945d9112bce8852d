//! Where a report goes: stdout, or the file `--output` names. A file is
//! written whole or not at all (a temporary file renamed into place), so a
//! CI step that uploads it never finds half a report.

use std::io::Write;
use std::path::Path;

use single_id::error::Error;

/// Writes `text` to `output`, or to stdout when there is none. `Ok(false)`
/// when stdout is gone (a closed pipe is the reader's choice, not an
/// error); an interrupted command writes nothing, since what it read is
/// incomplete.
pub fn write(output: Option<&Path>, text: &str) -> Result<bool, Error> {
    if single_id::interrupt::requested() {
        return Ok(false);
    }
    let Some(path) = output else {
        return Ok(std::io::stdout().write_all(text.as_bytes()).is_ok());
    };
    if path.is_dir() {
        return Err(Error::usage(format!(
            "{}: is a directory; --output names the report file to write",
            path.display()
        )));
    }
    let mut temp = path.as_os_str().to_owned();
    temp.push(format!(".partial-{}", std::process::id()));
    let written = std::fs::write(&temp, text).and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::usage_io(format!("{}: cannot write the report", path.display()), e));
    }
    Ok(true)
}
