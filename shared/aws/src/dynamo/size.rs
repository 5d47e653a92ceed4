//! DynamoDB's item sizing rules, for the item size limit and the write-unit estimate.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;

/// The size DynamoDB bills an item at: attribute names plus values, in bytes.
pub(crate) fn item_size(item: &HashMap<String, AttributeValue>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn value_size(value: &AttributeValue) -> usize {
    match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => number_size(n),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Ns(v) => v.iter().map(|n| number_size(n)).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        // Lists and maps cost 3 bytes plus 1 per element besides the elements.
        AttributeValue::L(v) => 3 + v.iter().map(|e| 1 + value_size(e)).sum::<usize>(),
        AttributeValue::M(m) => {
            3 + m
                .iter()
                .map(|(k, v)| 1 + k.len() + value_size(v))
                .sum::<usize>()
        }
        _ => 1,
    }
}

/// One byte per two significant digits, plus one.
fn number_size(n: &str) -> usize {
    let mantissa = n.split(['e', 'E']).next().unwrap_or(n);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    significant.div_ceil(2) + 1
}

/// Standard write units for an item of `bytes`: one per started kilobyte.
pub(crate) fn write_units(bytes: usize) -> f64 {
    bytes.max(1).div_ceil(1024) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_size_should_count_names_and_values() {
        let item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S("TASK#a".into())),
            ("version".to_owned(), AttributeValue::N("12345".into())),
        ]);
        assert_eq!(item_size(&item), 2 + 6 + 7 + 4);
    }

    #[test]
    fn write_units_should_round_up_per_kilobyte() {
        assert_eq!(write_units(0), 1.0);
        assert_eq!(write_units(1024), 1.0);
        assert_eq!(write_units(1025), 2.0);
    }

    #[test]
    fn numbers_should_cost_by_significant_digits() {
        assert_eq!(number_size("0"), 1);
        assert_eq!(number_size("1000"), 2);
        assert_eq!(number_size("-12.5"), 3);
    }
}
