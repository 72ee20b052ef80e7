//! Environment variables in config and rules files, the Vector / Fluent Bit way: `${VAR}` is
//! the variable's value, `${VAR:-default}` the default when it is unset or empty, and `$$` a
//! literal `$`; any other `$` is left as it is (a regex's `$` anchor needs no escaping unless
//! a `{` follows it). Comments are left alone. An unset variable without a default is a problem
//! naming the file, the line and the variable. Values are put in as written, so the file's
//! lines stay where they were (a value holding a newline is refused for that reason).

use super::{ConfigError, ConfigErrors};

/// The text with every `${…}` and `$$` outside comments replaced; `env` looks a variable up.
pub fn interpolate(
    text: &str,
    file: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<String, ConfigErrors> {
    let mut out = String::with_capacity(text.len());
    let mut errs = ConfigErrors::default();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        let (code, comment) = split_comment(line);
        let mut rest = code;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let after = &rest[at + 1..];
            if let Some(tail) = after.strip_prefix('$') {
                out.push('$');
                rest = tail;
            } else if let Some(inner) = after.strip_prefix('{') {
                let Some(close) = inner.find('}') else {
                    errs.0.push(problem(
                        file,
                        n,
                        "${",
                        "`${` is not closed",
                        "write ${NAME}, or $${ for a literal ${",
                    ));
                    out.push_str(&rest[at..]);
                    rest = "";
                    break;
                };
                let spec = &inner[..close];
                match value(spec, &env) {
                    Ok(v) => out.push_str(&v),
                    Err((problem_text, fix)) => errs.0.push(problem(
                        file,
                        n,
                        &format!("${{{spec}}}"),
                        &problem_text,
                        fix,
                    )),
                }
                rest = &inner[close + 1..];
            } else {
                out.push('$');
                rest = after;
            }
        }
        out.push_str(rest);
        out.push_str(comment);
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs)
    }
}

/// The value of `NAME` or `NAME:-default`.
fn value(
    spec: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, (String, &'static str)> {
    let (name, default) = match spec.split_once(":-") {
        Some((name, default)) => (name, Some(default)),
        None => (spec, None),
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err((
            format!("`{name}` is not a variable name"),
            "use letters, digits and _ (e.g. ${POD_NAME}); $$ is a literal $",
        ));
    }
    let value = match (env(name).filter(|v| !v.is_empty()), default) {
        (Some(v), _) => v,
        (None, Some(default)) => default.to_string(),
        (None, None) => {
            return Err((
                format!("environment variable {name} is not set"),
                "set it, or give a default: ${NAME:-value}",
            ))
        }
    };
    if value.contains('\n') {
        return Err((
            format!("environment variable {name} holds a newline"),
            "give it a value on one line",
        ));
    }
    Ok(value)
}

fn problem(file: &str, line: usize, key: &str, problem: &str, fix: &str) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        line: Some(line + 1),
        key: key.to_string(),
        problem: problem.to_string(),
        fix: fix.to_string(),
    }
}

/// A line split where its TOML comment starts (a `#` outside a string), if it has one.
/// Multi-line strings are rare in these files and their lines are taken as code.
fn split_comment(line: &str) -> (&str, &str) {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '#' => return (&line[..i], &line[i..]),
            None => {}
        }
    }
    (line, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "POD_NAME" => Some("shop-7f9c".into()),
            "EMPTY" => Some(String::new()),
            "MULTI" => Some("a\nb".into()),
            _ => None,
        }
    }

    #[test]
    fn variables_defaults_and_dollars() {
        let text = "pod = \"${POD_NAME}\"\nnode = \"${NODE:-unknown}\"\nempty = \"${EMPTY:-fallback}\"\nprice = \"$$5\"\npattern = 'failed$'\n";
        let out = interpolate(text, "c.toml", env).unwrap();
        assert_eq!(
            out,
            "pod = \"shop-7f9c\"\nnode = \"unknown\"\nempty = \"fallback\"\nprice = \"$5\"\npattern = 'failed$'\n"
        );
    }

    #[test]
    fn an_unset_variable_is_named_with_its_file_and_line() {
        let err = interpolate("a = 1\nb = \"${NOPE}\"\nc = \"${MULTI}\"\n", "c.toml", env)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("c.toml:2: ${NOPE}: environment variable NOPE is not set"),
            "{err}"
        );
        assert!(
            err.contains("c.toml:3: ${MULTI}: environment variable MULTI holds a newline"),
            "{err}"
        );
    }

    #[test]
    fn comments_are_left_alone() {
        let text = "# use ${VAR} here\nname = \"a#b ${POD_NAME}\" # ${ALSO_UNSET}\n";
        let out = interpolate(text, "c.toml", env).unwrap();
        assert_eq!(
            out,
            "# use ${VAR} here\nname = \"a#b shop-7f9c\" # ${ALSO_UNSET}\n"
        );
    }
}
