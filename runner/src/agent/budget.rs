//! `PJ_MAX_COST_USD` in the runner: before each model call, the attempt's spend so far plus what
//! the task's earlier attempts spent (`PJ_TASK_COST_USD`) is held against the cap.
//!
//! A call is not made when the spend has reached the cap, nor when the call would certainly pass
//! it: the conversation only grows, so a call to the same model costs at least what the previous
//! call's input cost. Nothing else is guessed, so a call may still end a little past the cap; the
//! next one is then refused.

use pj_core::agent::usd;

use pj_llm::price;

/// The cap and what the task spent before this attempt, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub cap: f64,
    pub earlier: f64,
}

/// Costs are whole millionths of a dollar; sums of them may fall a hair short in floats.
const EPSILON: f64 = 1e-9;

#[derive(Debug, Clone)]
struct LastCall {
    model: String,
    input_tokens: u64,
}

/// What this attempt's model calls cost so far, as the budget counts it.
#[derive(Debug, Clone)]
pub struct Spend {
    budget: Budget,
    attempt: f64,
    last: Option<LastCall>,
    unpriced: Vec<String>,
}

impl Spend {
    pub fn new(budget: Budget) -> Self {
        Spend {
            budget,
            attempt: 0.0,
            last: None,
            unpriced: Vec::new(),
        }
    }

    /// Before a call to `model`: why it must not be made, if it must not.
    pub fn check(&self, model: &str) -> Result<(), String> {
        let Budget { cap, earlier } = self.budget;
        let spent = earlier + self.attempt;
        let account = format!(
            "{} spent ({} by this attempt, {} by earlier attempts)",
            usd(spent),
            usd(self.attempt),
            usd(earlier)
        );
        if spent + EPSILON >= cap {
            return Err(format!(
                "the model spend reached PJ_MAX_COST_USD ({}): {account}; no more model calls",
                usd(cap)
            ));
        }
        let floor = self
            .last
            .as_ref()
            .filter(|last| last.model == model)
            .and_then(|last| {
                let price = price::price(model)?;
                let dollars = last.input_tokens as f64 / 1e6 * price.input_per_million;
                Some((last.input_tokens, (dollars * 1e6).round() / 1e6))
            });
        if let Some((tokens, floor)) = floor
            && spent + floor > cap + EPSILON
        {
            return Err(format!(
                "the next model call would pass PJ_MAX_COST_USD ({}): {account}, and its input \
                 alone (at least the {tokens} tokens of the last call) costs {}",
                usd(cap),
                usd(floor)
            ));
        }
        Ok(())
    }

    /// After a call to `model` that cost `cost` (`None`: its price is unknown). Returns a note
    /// for the log the first time a model's calls cannot be counted.
    pub fn record(&mut self, model: &str, input_tokens: u64, cost: Option<f64>) -> Option<String> {
        self.last = Some(LastCall {
            model: model.to_owned(),
            input_tokens,
        });
        match cost {
            Some(cost) => {
                self.attempt += cost;
                None
            }
            None if self.unpriced.iter().any(|m| m == model) => None,
            None => {
                self.unpriced.push(model.to_owned());
                Some(format!(
                    "the price of {model} is unknown: PJ_MAX_COST_USD cannot count its calls"
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spend(cap: f64, earlier: f64) -> Spend {
        Spend::new(Budget { cap, earlier })
    }

    #[test]
    fn a_call_is_made_while_the_spend_is_under_the_cap() {
        let mut s = spend(1.0, 0.25);
        assert_eq!(s.check("gpt-4.1"), Ok(()));
        s.record("gpt-4.1", 1_000, Some(0.5));
        assert_eq!(s.check("gpt-4.1"), Ok(()));
    }

    #[test]
    fn no_call_is_made_once_the_spend_reached_the_cap() {
        let mut s = spend(1.0, 0.4);
        s.record("gpt-4.1", 10, Some(0.6));
        let why = s.check("gpt-4.1").unwrap_err();
        assert!(why.contains("PJ_MAX_COST_USD ($1.00)"), "{why}");
        assert!(
            why.contains("$1.00 spent ($0.60 by this attempt, $0.40 by earlier attempts)"),
            "{why}"
        );
        let why = spend(0.5, 0.5).check("gpt-4.1").unwrap_err();
        assert!(why.contains("reached"), "{why}");
    }

    #[test]
    fn a_call_whose_input_alone_would_pass_the_cap_is_not_made() {
        // gpt-4.1 input: $2 per million tokens; 100,000 tokens cost $0.20.
        let mut s = spend(1.0, 0.0);
        s.record("gpt-4.1", 100_000, Some(0.85));
        let why = s.check("gpt-4.1").unwrap_err();
        assert!(why.contains("would pass"), "{why}");
        assert!(why.contains("100000 tokens"), "{why}");
        assert!(why.contains("$0.20"), "{why}");
        // Another model (a fallback) is priced differently: only the cap itself holds it back.
        assert_eq!(s.check("claude-sonnet-4-5"), Ok(()));
    }

    #[test]
    fn an_unpriced_model_is_said_once_and_counts_nothing() {
        let mut s = spend(1.0, 0.0);
        assert!(s.record("llama3", 10, None).is_some());
        assert!(s.record("llama3", 10, None).is_none());
        assert_eq!(s.check("llama3"), Ok(()));
    }
}
