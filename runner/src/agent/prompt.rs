//! What the model reads: the system prompt (a file in the repository, so it is reviewed like
//! code) and the messages built around the task.

/// The system prompt, `runner/prompts/system.md`.
pub const SYSTEM: &str = include_str!("../../prompts/system.md");

/// The most of a feedback text the model gets; the engine's full report stays in the log.
const MAX_FEEDBACK_CHARS: usize = 12_000;

/// The first message: the task, the review analysis when there is one, and the repository.
pub fn task_message(prompt: &str, analysis: Option<&str>, context: &str) -> String {
    let mut text = String::new();
    text.push_str("# Task\n\n");
    text.push_str(prompt.trim());
    text.push_str("\n\n");
    if let Some(analysis) = analysis.map(str::trim).filter(|a| !a.is_empty()) {
        text.push_str("# Code review analysis (CodeRabbit)\n\n");
        text.push_str(analysis);
        text.push_str("\n\n");
    }
    text.push_str("# Repository\n\n");
    text.push_str(context.trim_end());
    text.push_str(
        "\n\n# Your reply\n\nA short plan, then every edit as search/replace blocks or unified \
         diffs, as the system prompt describes.\n",
    );
    text
}

/// After edits that applied but failed the repository's check; they stay in place.
pub fn verify_feedback(command: &str, status: &str, tail: &str) -> String {
    format!(
        "Your edits were applied, but the repository's check `{command}` failed ({status}). \
         The end of its output:\n\n```\n{}\n```\n\nReply with further edits that fix this, \
         against the files as they are now (with your previous edits applied).",
        capped(tail)
    )
}

/// `text`, cut to what a feedback message may take.
pub fn capped(text: &str) -> String {
    if text.chars().count() <= MAX_FEEDBACK_CHARS {
        return text.to_owned();
    }
    let kept: String = text.chars().take(MAX_FEEDBACK_CHARS).collect();
    format!("{kept}\n[… cut]")
}

/// The pull request's title: the task's first line, at most 72 characters.
pub fn title(prompt: &str) -> String {
    let first = prompt
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("Pithy Jaunt change");
    let first = first.trim_start_matches('#').trim();
    if first.chars().count() <= 72 {
        first.to_owned()
    } else {
        let cut: String = first.chars().take(71).collect();
        format!("{}…", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_title_is_the_first_line_capped() {
        assert_eq!(title("\n  Fix the bug\nmore words"), "Fix the bug");
        let long = "x".repeat(100);
        assert_eq!(title(&long).chars().count(), 72);
        assert_eq!(title("  \n"), "Pithy Jaunt change");
    }

    #[test]
    fn the_system_prompt_names_both_edit_formats() {
        assert!(SYSTEM.contains("<<<<<<< SEARCH"));
        assert!(SYSTEM.contains(">>>>>>> REPLACE"));
        assert!(SYSTEM.contains("```diff"));
    }

    #[test]
    fn the_task_message_holds_the_task_analysis_and_context() {
        let m = task_message("Do it", Some("Watch out"), "src/a.rs");
        assert!(m.contains("Do it") && m.contains("Watch out") && m.contains("src/a.rs"));
        assert!(!task_message("Do it", None, "ctx").contains("CodeRabbit"));
    }
}
