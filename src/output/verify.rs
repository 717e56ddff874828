//! verify's report.

use serde::Serialize;

use super::Report;

/// A range of ids, both ends included.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdRange {
    pub first: i64,
    pub last: i64,
}

impl std::fmt::Display for IdRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.first == self.last {
            write!(f, "{}", self.first)
        } else {
            write!(f, "{}-{}", self.first, self.last)
        }
    }
}

/// One differing row present on both sides.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RowReport {
    pub id: i64,
    pub difference: crate::store::digest::RowDifference,
}

/// The result of `verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub format_version: u32,
    pub reference: String,
    pub copy: String,
    pub reference_max_id: i64,
    pub copy_max_id: i64,
    /// Ids 1..this were compared.
    pub compared_up_to: i64,
    /// `exact` or `ms`.
    pub ts_precision: &'static str,
    /// Rows of the reference within the comparison.
    pub rows_compared: i64,
    /// Every id up to this one is identical on both sides.
    pub identical_up_to: i64,
    /// How many ids the copy is behind the reference (negative: ahead).
    pub behind: i64,
    /// Ids that differ in any way (missing on a side, another ts or event).
    pub differing_rows: i64,
    /// Ids the reference has and the copy lacks (the first 100 ranges).
    pub missing_in_copy: Vec<IdRange>,
    /// Ids the copy has and the reference lacks (the first 100 ranges).
    pub missing_in_reference: Vec<IdRange>,
    /// The first 20 rows present on both sides that differ.
    pub first_differences: Vec<RowReport>,
    /// The verdict (with `--exact`, a copy behind is not identical).
    pub identical: bool,
}

impl Report for VerifyReport {
    fn text(&self) -> String {
        let mut out = format!(
            "reference  {}  (max id {})\ncopy       {}  (max id {}{})\ncompared   ids 1..{} ({} rows, timestamps {})\n",
            self.reference,
            self.reference_max_id,
            self.copy,
            self.copy_max_id,
            match self.behind {
                0 => String::new(),
                n if n > 0 => format!(", {n} behind"),
                n => format!(", {} ahead", -n),
            },
            self.compared_up_to,
            self.rows_compared,
            self.ts_precision
        );
        if self.differing_rows == 0 {
            out.push_str(&format!(
                "verdict    {}: identical up to id {}\n",
                if self.identical {
                    "identical"
                } else {
                    "different"
                },
                self.identical_up_to
            ));
            return out;
        }
        out.push_str(&format!(
            "verdict    different: {} differing row(s); identical up to id {}\n",
            self.differing_rows, self.identical_up_to
        ));
        let ranges = |rs: &[IdRange]| {
            rs.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        if !self.missing_in_copy.is_empty() {
            out.push_str(&format!(
                "missing in the copy:      {}\n",
                ranges(&self.missing_in_copy)
            ));
        }
        if !self.missing_in_reference.is_empty() {
            out.push_str(&format!(
                "missing in the reference: {}\n",
                ranges(&self.missing_in_reference)
            ));
        }
        for row in &self.first_differences {
            out.push_str(&format!(
                "id {}: {} differs\n",
                row.id,
                match row.difference {
                    crate::store::digest::RowDifference::Ts => "ts",
                    crate::store::digest::RowDifference::Event => "event",
                    crate::store::digest::RowDifference::TsAndEvent => "ts and event",
                    _ => "presence",
                }
            ));
        }
        out
    }
}
