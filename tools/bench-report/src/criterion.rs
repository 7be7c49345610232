//! Criterion's results: `<dir>/**/new/benchmark.json` (which benchmark)
//! and `estimates.json` beside it (bootstrapped statistics of the time per
//! iteration, in ns).

use std::path::Path;

/// One benchmark's median time per iteration and its spread.
#[derive(Debug, Clone, PartialEq)]
pub struct Estimate {
    /// Group name (`read_disabled_1000`).
    pub group: String,
    /// Function name, or the parameter for `BenchmarkId::from_parameter`.
    pub id: String,
    /// Median ns per iteration.
    pub median: f64,
    /// Median absolute deviation of the samples, ns per iteration.
    pub mad: f64,
    /// Elements per iteration, when the bench declared a throughput.
    pub elements: Option<u64>,
}

impl Estimate {
    /// Median ns per element (per check, per site), or per iteration.
    pub fn per_element(&self) -> f64 {
        self.median / self.elements.unwrap_or(1) as f64
    }

    /// MAD per element.
    pub fn mad_per_element(&self) -> f64 {
        self.mad / self.elements.unwrap_or(1) as f64
    }
}

/// Every benchmark under `dir` (empty if there is none).
pub fn load(dir: &Path) -> Vec<Estimate> {
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort_by(|a, b| (&a.group, &a.id).cmp(&(&b.group, &b.id)));
    out
}

fn walk(dir: &Path, out: &mut Vec<Estimate>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name() == Some("new".as_ref()) {
            if let Some(e) = read(&path) {
                out.push(e);
            }
        } else {
            walk(&path, out);
        }
    }
}

fn json(path: &Path) -> Option<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn read(new: &Path) -> Option<Estimate> {
    let bench = json(&new.join("benchmark.json"))?;
    let est = json(&new.join("estimates.json"))?;
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    Some(Estimate {
        group: text(&bench["group_id"])?,
        id: text(&bench["function_id"]).or_else(|| text(&bench["value_str"]))?,
        median: est["median"]["point_estimate"].as_f64()?,
        mad: est["median_abs_dev"]["point_estimate"].as_f64()?,
        elements: bench["throughput"]["Elements"].as_u64(),
    })
}

/// Lookups over loaded estimates.
#[derive(Debug, Default)]
pub struct Results(pub Vec<Estimate>);

impl Results {
    /// The estimate of `group/id`.
    pub fn get(&self, group: &str, id: &str) -> Option<&Estimate> {
        self.0.iter().find(|e| e.group == group && e.id == id)
    }

    /// Median ns per element of `group/id`.
    pub fn ns(&self, group: &str, id: &str) -> Option<f64> {
        self.get(group, id).map(Estimate::per_element)
    }

    /// `group/id` over `group/base`, per element.
    pub fn ratio(&self, group: &str, id: &str, base: &str) -> Option<f64> {
        Some(self.ns(group, id)? / self.ns(group, base)?)
    }
}
