//! Environment overrides: `ORACLE__` then the key path with `__` between
//! segments, matched case-insensitively (`-`, `/` and `.` in keys match `_`),
//! list items by index: `ORACLE__CHAIN__RPC_URL=http://…` sets
//! `chain.rpc_url`, `ORACLE__FEEDS__0__HEARTBEAT=30s` the first feed's
//! heartbeat. A value takes the type of the value it replaces; where the file
//! has none, its look decides (`7` an integer, `[…]` a list), and text is
//! tried when the schema wants text. A list of text is also accepted as
//! `a,b,c`. Errors name the variable.

use serde::de::DeserializeOwned;

use super::ConfigError;

/// Prefix of environment overrides.
pub const ENV_PREFIX: &str = "ORACLE__";

/// Applies the `ORACLE__…` variables of `env` to `root` and deserializes the
/// result, naming the key (and the variable that set it) in any error.
pub(super) fn deserialize<T: DeserializeOwned>(
    mut root: toml::Value,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError> {
    let mut overrides: Vec<(String, String)> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    overrides.sort();
    let mut applied = Vec::with_capacity(overrides.len());
    for (var, value) in &overrides {
        applied.push(apply_override(&mut root, var, value)?);
    }
    // A value set from the environment for a key the file does not have is
    // typed by its look (`7` is an integer). Where the schema wants text
    // instead, retry with the text: at most once per override.
    let mut retries = applied.len();
    loop {
        match serde_path_to_error::deserialize::<_, T>(root.clone()) {
            Ok(value) => return Ok(value),
            Err(e) => {
                let key = e.path().to_string();
                let by_env = applied.iter().find(|a| a.key == key);
                if let Some(a) = by_env.filter(|a| a.inferred && retries > 0) {
                    retries -= 1;
                    set_path(&mut root, &a.segments, toml::Value::String(a.text.clone()));
                    if let Some(a) = applied.iter_mut().find(|x| x.key == key) {
                        a.inferred = false;
                    }
                    continue;
                }
                let mut message = e.inner().to_string();
                if let Some(a) = by_env {
                    message = format!("{} (set by {})", message.trim_end(), a.var);
                }
                let key = if key == "." { "(root)".to_owned() } else { key };
                return Err(ConfigError::key(key, message));
            }
        }
    }
}

/// Normalizes a key for case- and punctuation-insensitive matching.
fn norm(key: &str) -> String {
    key.chars()
        .map(|c| match c {
            '-' | '/' | '.' => '_',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// Parses an override's text as the type of the value it replaces.
fn typed_value(text: &str, like: Option<&toml::Value>) -> Result<toml::Value, String> {
    let parsed = || -> Option<toml::Value> {
        toml::from_str::<toml::Table>(&format!("v = {text}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
    };
    match like {
        Some(toml::Value::String(_)) => Ok(toml::Value::String(text.to_owned())),
        Some(existing) => match parsed() {
            Some(v) if v.same_type(existing) => Ok(v),
            Some(toml::Value::Integer(i)) if matches!(existing, toml::Value::Float(_)) => {
                Ok(toml::Value::Float(i as f64))
            }
            // A list of text given as `a,b,c` (`ORACLE__NATS__URLS=nats://a:4222,nats://b:4222`).
            None if matches!(existing, toml::Value::Array(items)
                if items.iter().all(toml::Value::is_str))
                && !text.trim_start().starts_with('[') =>
            {
                Ok(toml::Value::Array(
                    text.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(|t| toml::Value::String(t.to_owned()))
                        .collect(),
                ))
            }
            _ => Err(format!(
                "expected a {} value, got {text:?}",
                existing.type_str()
            )),
        },
        None => Ok(match parsed() {
            Some(
                v @ (toml::Value::Boolean(_) | toml::Value::Integer(_) | toml::Value::Float(_)),
            ) => v,
            Some(v @ toml::Value::Array(_)) => v,
            _ => toml::Value::String(text.to_owned()),
        }),
    }
}

/// What one environment override changed.
#[derive(Debug)]
struct Applied {
    var: String,
    /// The key as serde_path_to_error prints it: `feeds[0].heartbeat`.
    key: String,
    /// The actual keys and indices walked.
    segments: Vec<Segment>,
    text: String,
    /// The value's type was guessed (the file had no value there).
    inferred: bool,
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    Index(usize),
}

fn set_path(root: &mut toml::Value, segments: &[Segment], value: toml::Value) {
    let mut node = root;
    for seg in segments {
        let next = match (seg, node) {
            (Segment::Key(k), toml::Value::Table(t)) => t.get_mut(k),
            (Segment::Index(i), toml::Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => return,
        }
    }
    *node = value;
}

fn apply_override(root: &mut toml::Value, var: &str, text: &str) -> Result<Applied, ConfigError> {
    let env_err = |message: String| ConfigError::Env {
        var: var.to_owned(),
        message,
    };
    let path: Vec<&str> = var[ENV_PREFIX.len()..].split("__").collect();
    if path.iter().any(|s| s.is_empty()) {
        return Err(env_err("empty path segment".into()));
    }
    let mut applied = Applied {
        var: var.to_owned(),
        key: String::new(),
        segments: Vec::with_capacity(path.len()),
        text: text.to_owned(),
        inferred: false,
    };
    let mut node = root;
    for (depth, segment) in path.iter().enumerate() {
        let last = depth + 1 == path.len();
        node = match node {
            toml::Value::Table(table) => {
                let wanted = norm(segment);
                let key = table
                    .keys()
                    .find(|k| norm(k) == wanted)
                    .cloned()
                    .unwrap_or_else(|| segment.to_ascii_lowercase());
                if !applied.key.is_empty() {
                    applied.key.push('.');
                }
                applied.key.push_str(&key);
                applied.segments.push(Segment::Key(key.clone()));
                if last {
                    applied.inferred = !table.contains_key(&key);
                    let value = typed_value(text, table.get(&key)).map_err(env_err)?;
                    table.insert(key, value);
                    return Ok(applied);
                }
                table
                    .entry(key)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            toml::Value::Array(items) => {
                let index: usize = segment
                    .parse()
                    .map_err(|_| env_err(format!("{segment:?} is not an index into a list")))?;
                let len = items.len();
                let item = items.get_mut(index).ok_or_else(|| {
                    env_err(format!("index {index} is past the list's {len} items"))
                })?;
                applied.key.push_str(&format!("[{index}]"));
                applied.segments.push(Segment::Index(index));
                if last {
                    *item = typed_value(text, Some(item)).map_err(env_err)?;
                    return Ok(applied);
                }
                item
            }
            other => {
                return Err(env_err(format!(
                    "{} is a {} and has no key {segment:?}",
                    path[..depth].join("__"),
                    other.type_str()
                )));
            }
        };
    }
    Ok(applied)
}
