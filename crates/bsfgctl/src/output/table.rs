//! Aligned plain-text tables (no colours: output goes to logs and tickets).

/// Renders `headers` and `rows` as left-aligned columns separated by two
/// spaces; trailing spaces trimmed. Cells with line breaks are flattened.
/// Short rows are padded with empty cells.
pub fn render(headers: &[&str], rows: &[Vec<String>]) -> String {
    let n = headers.len();
    let clean = |s: &str| s.replace(['\n', '\r', '\t'], " ");
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            (0..n)
                .map(|i| clean(r.get(i).map(String::as_str).unwrap_or("")))
                .collect()
        })
        .collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            s.push_str(c);
            if i + 1 < n {
                s.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        s.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for r in &rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_to_the_widest_cell_and_short_rows_are_padded() {
        let t = render(
            &["HOST", "VRRP", "NOTE"],
            &[
                vec!["alpha".into(), "MASTER".into(), "holds the VIP".into()],
                vec!["gamma".into()],
                vec!["b".into(), "BACKUP\nx".into(), "".into()],
            ],
        );
        assert_eq!(
            t,
            "HOST   VRRP      NOTE\n\
             alpha  MASTER    holds the VIP\n\
             gamma\n\
             b      BACKUP x\n"
        );
    }

    #[test]
    fn multibyte_cells_count_characters_not_bytes() {
        let t = render(&["A", "B"], &[vec!["ü".into(), "x".into()]]);
        assert_eq!(t, "A  B\nü  x\n");
    }
}
