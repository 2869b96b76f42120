//! Go's `text/tabwriter` as docker's table output uses it (minwidth 10, padding 3, spaces).
//!
//! Cells end with a tab; the last cell of a line is not aligned. A column's width is the
//! widest cell of the consecutive lines that have that column, plus the padding, at least
//! the minimum width. A line with a single cell ends the block, as in Go.

#[derive(Clone, Copy, Default)]
struct Cell {
    start: usize,
    size: usize,
    width: usize,
}

pub struct TabWriter {
    minwidth: usize,
    padding: usize,
    buf: String,
    lines: Vec<Vec<Cell>>,
    cell: Cell,
    widths: Vec<usize>,
    out: String,
}

/// Display width of a string: one per character, two for wide East Asian characters.
pub fn display_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

fn char_width(c: char) -> usize {
    let c = c as u32;
    let wide = (0x1100..=0x115F).contains(&c)
        || (0x2E80..=0xA4CF).contains(&c)
        || (0xAC00..=0xD7A3).contains(&c)
        || (0xF900..=0xFAFF).contains(&c)
        || (0xFE30..=0xFE4F).contains(&c)
        || (0xFF00..=0xFF60).contains(&c)
        || (0xFFE0..=0xFFE6).contains(&c)
        || (0x1F300..=0x1F64F).contains(&c)
        || (0x20000..=0x3FFFD).contains(&c);
    if wide {
        2
    } else {
        1
    }
}

impl TabWriter {
    /// The settings docker's formatter uses.
    pub fn docker() -> Self {
        Self::new(10, 3)
    }

    pub fn new(minwidth: usize, padding: usize) -> Self {
        Self {
            minwidth,
            padding,
            buf: String::new(),
            lines: vec![Vec::new()],
            cell: Cell::default(),
            widths: Vec::new(),
            out: String::new(),
        }
    }

    pub fn write(&mut self, text: &str) {
        for ch in text.chars() {
            match ch {
                '\t' | '\n' => {
                    let ncells = self.terminate_cell();
                    if ch == '\n' {
                        self.lines.push(Vec::new());
                        if ncells == 1 {
                            self.flush_lines();
                        }
                    }
                }
                c => {
                    self.buf.push(c);
                    self.cell.size += c.len_utf8();
                    self.cell.width += char_width(c);
                }
            }
        }
    }

    fn terminate_cell(&mut self) -> usize {
        let line = self.lines.last_mut().expect("tabwriter always has a line");
        line.push(self.cell);
        self.cell = Cell {
            start: self.buf.len(),
            size: 0,
            width: 0,
        };
        line.len()
    }

    fn flush_lines(&mut self) {
        if self.cell.size > 0 {
            self.terminate_cell();
        }
        let n = self.lines.len();
        self.format(0, n);
        self.buf.clear();
        self.lines = vec![Vec::new()];
        self.cell = Cell::default();
        self.widths.clear();
    }

    /// Flushes and returns everything written so far.
    pub fn finish(mut self) -> String {
        self.flush_lines();
        self.out
    }

    fn write_lines(&mut self, line0: usize, line1: usize) {
        for i in line0..line1 {
            let line = self.lines[i].clone();
            for (j, c) in line.iter().enumerate() {
                self.out.push_str(&self.buf[c.start..c.start + c.size]);
                if j < self.widths.len() {
                    let pad = self.widths[j].saturating_sub(c.width);
                    self.out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if i + 1 == self.lines.len() {
                // the last, unterminated line: its pending cell was already terminated
            } else {
                self.out.push('\n');
            }
        }
    }

    fn format(&mut self, mut line0: usize, line1: usize) {
        let column = self.widths.len();
        let mut this = line0;
        while this < line1 {
            if column + 1 >= self.lines[this].len() {
                this += 1;
                continue;
            }
            self.write_lines(line0, this);
            line0 = this;
            let mut width = self.minwidth;
            while this < line1 {
                let line = &self.lines[this];
                if column + 1 >= line.len() {
                    break;
                }
                width = width.max(line[column].width + self.padding);
                this += 1;
            }
            self.widths.push(width);
            self.format(line0, this);
            self.widths.pop();
            line0 = this;
        }
        self.write_lines(line0, line1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_pad_to_the_widest_cell_plus_three() {
        let mut t = TabWriter::docker();
        t.write("CONTAINER ID\tIMAGE\tNAMES\n");
        t.write("0123456789ab\tbusybox\tx\n");
        assert_eq!(
            t.finish(),
            "CONTAINER ID   IMAGE     NAMES\n0123456789ab   busybox   x\n"
        );
    }

    #[test]
    fn short_columns_get_the_minimum_width() {
        let mut t = TabWriter::docker();
        t.write("A\tB\n");
        assert_eq!(t.finish(), "A         B\n");
    }

    #[test]
    fn empty_cells_still_take_the_column_width() {
        let mut t = TabWriter::docker();
        t.write("PORTS\tNAMES\n\tfoo\n");
        assert_eq!(t.finish(), "PORTS     NAMES\n          foo\n");
    }

    #[test]
    fn wide_characters_count_twice() {
        assert_eq!(display_width("日本"), 4);
        assert_eq!(display_width("a…"), 2);
    }
}
