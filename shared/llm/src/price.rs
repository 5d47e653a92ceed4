//! What model calls cost: a small table of well-known models, in US dollars per million tokens.
//!
//! Prices change; a model missing here still has its tokens counted, with cost `null`.

/// The list price of one model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    pub input_per_million: f64,
    pub output_per_million: f64,
}

const fn p(input: f64, output: f64) -> Price {
    Price {
        input_per_million: input,
        output_per_million: output,
    }
}

/// Base model names. A dated variant (`gpt-4o-2024-08-06`, `claude-sonnet-4-20250514`) or a
/// `-latest` alias is priced as its base name.
const TABLE: &[(&str, Price)] = &[
    // OpenAI
    ("gpt-5", p(1.25, 10.0)),
    ("gpt-5-mini", p(0.25, 2.0)),
    ("gpt-5-nano", p(0.05, 0.40)),
    ("gpt-4.1", p(2.0, 8.0)),
    ("gpt-4.1-mini", p(0.40, 1.60)),
    ("gpt-4.1-nano", p(0.10, 0.40)),
    ("gpt-4o", p(2.50, 10.0)),
    ("gpt-4o-mini", p(0.15, 0.60)),
    ("gpt-4-turbo", p(10.0, 30.0)),
    ("o1", p(15.0, 60.0)),
    ("o3", p(2.0, 8.0)),
    ("o3-mini", p(1.10, 4.40)),
    ("o4-mini", p(1.10, 4.40)),
    // Anthropic
    ("claude-opus-4-5", p(5.0, 25.0)),
    ("claude-opus-4-1", p(15.0, 75.0)),
    ("claude-opus-4", p(15.0, 75.0)),
    ("claude-sonnet-4-5", p(3.0, 15.0)),
    ("claude-sonnet-4", p(3.0, 15.0)),
    ("claude-haiku-4-5", p(1.0, 5.0)),
    ("claude-3-7-sonnet", p(3.0, 15.0)),
    ("claude-3-5-sonnet", p(3.0, 15.0)),
    ("claude-3-5-haiku", p(0.80, 4.0)),
    ("claude-3-opus", p(15.0, 75.0)),
    ("claude-3-haiku", p(0.25, 1.25)),
];

/// The price of `model`: its own entry, or that of the base name it is a dated variant of.
pub fn price(model: &str) -> Option<Price> {
    let model = model.trim().to_ascii_lowercase();
    // A provider prefix as routers write it ("openai/gpt-4o") names the same model.
    let model = model.rsplit('/').next().unwrap_or(&model);
    TABLE
        .iter()
        .filter(|(base, _)| {
            model
                .strip_prefix(base)
                .is_some_and(|rest| rest.is_empty() || is_version_suffix(rest))
        })
        .max_by_key(|(base, _)| base.len())
        .map(|(_, price)| *price)
}

/// `-20250514`, `-2024-08-06` or `-latest`: the same model, not a different one (`-mini`, `-5`).
fn is_version_suffix(rest: &str) -> bool {
    let Some(rest) = rest.strip_prefix('-') else {
        return false;
    };
    if rest == "latest" {
        return true;
    }
    let digits: String = rest.chars().filter(|c| *c != '-').collect();
    digits.len() == 8
        && digits.chars().all(|c| c.is_ascii_digit())
        && (rest.len() == 8 || rest.len() == 10)
}

/// The cost of a call in US dollars, or `None` for a model not in the table.
pub fn cost(model: &str, input_tokens: u64, output_tokens: u64) -> Option<f64> {
    let price = price(model)?;
    let dollars = input_tokens as f64 / 1e6 * price.input_per_million
        + output_tokens as f64 / 1e6 * price.output_per_million;
    // Whole millionths of a dollar, so sums do not show float noise.
    Some((dollars * 1e6).round() / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dated_variants_cost_what_their_base_model_costs() {
        assert_eq!(price("gpt-4o-2024-08-06"), price("gpt-4o"));
        assert_eq!(price("gpt-4o-mini-2024-07-18"), Some(p(0.15, 0.60)));
        assert_eq!(price("claude-sonnet-4-20250514"), Some(p(3.0, 15.0)));
        assert_eq!(price("claude-3-5-sonnet-latest"), Some(p(3.0, 15.0)));
        assert_eq!(price("claude-opus-4-5-20251101"), Some(p(5.0, 25.0)));
    }

    #[test]
    fn a_different_model_with_a_known_prefix_is_unknown() {
        assert_eq!(price("o3-pro"), None);
        assert_eq!(price("claude-opus-4-7"), None);
        assert_eq!(price("llama3.1:8b"), None);
    }

    #[test]
    fn cost_is_per_million_tokens() {
        assert_eq!(cost("gpt-4.1", 1_000_000, 500_000), Some(6.0));
        assert_eq!(cost("gpt-4o-mini", 1_000, 1_000), Some(0.00075));
        assert_eq!(cost("my-local-model", 10, 10), None);
    }
}
