//! The one result line (`MODE key=value ...`) and the figures in it: percentiles, milliseconds,
//! the names of values as they were given on the command line.

use clap::ValueEnum;

/// The result line: `MODE key=value ...`, plus whether the run was complete.
pub struct Report {
    mode: &'static str,
    fields: Vec<(String, String)>,
    /// Whether every expected result arrived; decides the exit code.
    pub complete: bool,
}

impl Report {
    pub fn new(mode: &'static str) -> Self {
        Self {
            mode,
            fields: Vec::new(),
            complete: true,
        }
    }

    /// Appends `key=value`; keys made at run time (`held_n2`) are for several servers' figures.
    pub fn add(&mut self, key: impl Into<String>, value: impl std::fmt::Display) {
        self.fields.push((key.into(), value.to_string()));
    }

    pub fn line(&self) -> String {
        let mut line = self.mode.to_owned();
        for (key, value) in &self.fields {
            line.push(' ');
            line.push_str(key);
            line.push('=');
            line.push_str(value);
        }
        line
    }
}

/// The name clap gives a value on the command line.
pub fn value_name(value: impl ValueEnum) -> String {
    value
        .to_possible_value()
        .map_or_else(String::new, |v| v.get_name().to_owned())
}

/// Nanoseconds as milliseconds with three decimals.
pub fn ms(nanos: u64) -> String {
    format!("{:.3}", nanos as f64 / 1e6)
}

/// The value below which `fraction` of `values` fall (nearest rank); reorders `values`.
pub fn percentile(values: &mut [u64], fraction: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let rank = ((values.len() as f64 * fraction).ceil() as usize).clamp(1, values.len()) - 1;
    *values.select_nth_unstable(rank).1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let mut values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&mut values, 0.5), 50);
        assert_eq!(percentile(&mut values, 0.99), 99);
        assert_eq!(percentile(&mut [5], 0.99), 5);
    }
}
