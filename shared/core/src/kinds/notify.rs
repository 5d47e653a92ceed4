//! Where a message goes: a task's `notify` and the channel of the `notification`, `reminder`
//! and `report` kinds.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ValidationError;
use crate::kinds::config::{Fields, check_http_url};

/// The most channels one task's `notify` may name.
pub const MAX_CHANNELS: usize = 5;
const MAX_SUBJECT_CHARS: usize = 200;

/// One destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "snake_case")]
pub enum ChannelSpec {
    /// `to` absent: the owner's address.
    Email {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    Webhook {
        url: String,
    },
    /// A GoHighLevel contact, through its conversations API.
    Sms {
        contact_id: String,
    },
}

impl ChannelSpec {
    pub fn name(&self) -> &'static str {
        match self {
            ChannelSpec::Email { .. } => "email",
            ChannelSpec::Webhook { .. } => "webhook",
            ChannelSpec::Sms { .. } => "sms",
        }
    }

    /// Reads a channel from `fields`, which may hold other fields of its object (listed in
    /// `also`); `subject_allowed` for the kinds that send a text of their own.
    pub(crate) fn parse(
        fields: &Fields<'_>,
        also: &[&str],
        owner_has_email: bool,
    ) -> Result<ChannelSpec, ValidationError> {
        let channel = fields.required_str("channel")?;
        let spec = match channel {
            "email" => {
                fields.only(&[&["channel", "to", "subject"], also].concat())?;
                let to = fields.str("to")?.map(str::to_owned);
                if let Some(to) = &to {
                    crate::email::check_address(to).map_err(|why| fields.error("to", why))?;
                } else if !owner_has_email {
                    return Err(fields.error(
                        "to",
                        "is required: the token this task is created with has no email address",
                    ));
                }
                let subject = fields.str("subject")?.map(str::to_owned);
                if let Some(s) = &subject
                    && (s.chars().count() > MAX_SUBJECT_CHARS || s.chars().any(char::is_control))
                {
                    return Err(fields.error(
                        "subject",
                        format!("must be at most {MAX_SUBJECT_CHARS} characters on one line"),
                    ));
                }
                ChannelSpec::Email { to, subject }
            }
            "webhook" => {
                fields.only(&[&["channel", "url"], also].concat())?;
                let url = fields.required_str("url")?;
                check_http_url(url).map_err(|why| fields.error("url", why))?;
                ChannelSpec::Webhook {
                    url: url.to_owned(),
                }
            }
            "sms" => {
                fields.only(&[&["channel", "contact_id"], also].concat())?;
                let contact_id = fields.required_str("contact_id")?;
                crate::kinds::config::check_ghl_id(contact_id)
                    .map_err(|why| fields.error("contact_id", why))?;
                ChannelSpec::Sms {
                    contact_id: contact_id.to_owned(),
                }
            }
            _ => return Err(fields.error("channel", "must be email, webhook or sms")),
        };
        Ok(spec)
    }
}

/// A task's `notify`: which outcomes send messages, and where.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotifySpec {
    pub on_complete: bool,
    pub on_failure: bool,
    /// Empty: an email to the task's notification address, as before `notify` existed.
    #[serde(default)]
    pub channels: Vec<ChannelSpec>,
}

impl Default for NotifySpec {
    fn default() -> Self {
        NotifySpec {
            on_complete: true,
            on_failure: true,
            channels: Vec::new(),
        }
    }
}

impl NotifySpec {
    pub fn parse(value: &Value, owner_has_email: bool) -> Result<NotifySpec, ValidationError> {
        let fields = Fields::of(value, "notify")?;
        fields.only(&["on_complete", "on_failure", "channels"])?;
        let on_complete = fields.bool("on_complete")?.unwrap_or(true);
        let on_failure = fields.bool("on_failure")?.unwrap_or(true);
        let channels = match fields.get("channels") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                if items.len() > MAX_CHANNELS {
                    return Err(fields.error(
                        "channels",
                        format!("must hold at most {MAX_CHANNELS} channels"),
                    ));
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| {
                        let item = Fields::of(item, &format!("notify.channels[{i}]"))?;
                        ChannelSpec::parse(&item, &[], owner_has_email)
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(_) => return Err(fields.error("channels", "must be a list of channels")),
        };
        Ok(NotifySpec {
            on_complete,
            on_failure,
            channels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn field(v: Value) -> String {
        NotifySpec::parse(&v, true).unwrap_err().field
    }

    #[test]
    fn a_notify_without_channels_means_the_owners_email_on_every_outcome() {
        let spec = NotifySpec::parse(&json!({}), true).unwrap();
        assert_eq!(spec, NotifySpec::default());
    }

    #[test]
    fn every_wrong_part_of_notify_is_named_down_to_the_list_item() {
        assert_eq!(field(json!("yes")), "notify");
        assert_eq!(field(json!({"on_complete": "yes"})), "notify.on_complete");
        assert_eq!(field(json!({"channels": {}})), "notify.channels");
        assert_eq!(
            field(json!({"channels": [{"channel": "email"}, {"channel": "pigeon"}]})),
            "notify.channels[1].channel"
        );
        assert_eq!(
            field(json!({"channels": [{"channel": "webhook", "url": "ftp://x"}]})),
            "notify.channels[0].url"
        );
        assert_eq!(
            field(json!({"channels": [{"channel": "sms"}]})),
            "notify.channels[0].contact_id"
        );
        assert_eq!(
            field(json!({"channels": [{"channel": "email", "to": "not an address"}]})),
            "notify.channels[0].to"
        );
        assert_eq!(
            field(json!({"channels": [{"channel": "email", "colour": 1}]})),
            "notify.channels[0].colour"
        );
        assert_eq!(
            field(json!({"channels": vec![json!({"channel": "email"}); 6]})),
            "notify.channels"
        );
    }

    #[test]
    fn an_email_channel_without_an_address_is_refused_when_the_owner_has_none() {
        let err = NotifySpec::parse(&json!({"channels": [{"channel": "email"}]}), false);
        assert_eq!(err.unwrap_err().field, "notify.channels[0].to");
    }
}
