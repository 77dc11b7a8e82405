//! The authorization endpoint's server-rendered pages: sign-in, patient picker, consent and
//! error pages. Plain, accessible HTML (a `lang`, labelled controls, one `h1`, alerts announced
//! with `role="alert"`), no external assets, and every interpolated value escaped.

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}h1{font-size:1.5rem}label{display:block;\
margin-top:1rem;font-weight:600}input[type=text],input[type=password]{width:100%;padding:.5rem;\
font-size:1rem;box-sizing:border-box}button{margin-top:1.25rem;margin-right:.5rem;\
padding:.6rem 1.2rem;font-size:1rem}fieldset{border:1px solid #888;padding:1rem}\
.alert{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecee}\
li{margin:.4rem 0}.muted{color:#555}:focus{outline:3px solid #1a5fb4}";

/// A whole page.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} – Coplan</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n\
         </main>\n</body>\n</html>\n",
        escape(title)
    )
}

/// Hidden inputs carrying the authorization request and the CSRF token.
pub fn hidden(fields: &[(&str, &str)], csrf: &str) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(&format!(
            "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
            escape(name),
            escape(value)
        ));
    }
    out.push_str(&format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">\n",
        escape(csrf)
    ));
    out
}

fn alert(message: Option<&str>) -> String {
    message
        .map(|m| format!("<p class=\"alert\" role=\"alert\">{}</p>\n", escape(m)))
        .unwrap_or_default()
}

pub fn login(action: &str, app: &str, hidden_fields: &str, error: Option<&str>) -> String {
    layout(
        "Sign in",
        &format!(
            "<h1>Sign in to Coplan</h1>\n<p><strong>{app}</strong> wants to use your Coplan \
             record.</p>\n{alert}<form method=\"post\" action=\"{action}\">\n{hidden_fields}\
             <input type=\"hidden\" name=\"step\" value=\"login\">\n\
             <label for=\"username\">Username</label>\n\
             <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" \
             required autofocus>\n<label for=\"password\">Password</label>\n\
             <input type=\"password\" id=\"password\" name=\"password\" \
             autocomplete=\"current-password\" required>\n\
             <button type=\"submit\">Sign in</button>\n</form>",
            app = escape(app),
            action = escape(action),
            alert = alert(error),
        ),
    )
}

pub fn picker(
    action: &str,
    app: &str,
    hidden_fields: &str,
    patients: &[(String, String)],
) -> String {
    let mut options = String::new();
    for (i, (id, label)) in patients.iter().enumerate() {
        options.push_str(&format!(
            "<div><input type=\"radio\" id=\"patient-{i}\" name=\"patient\" value=\"{}\"{}>\
             <label for=\"patient-{i}\" style=\"display:inline\">{}</label></div>\n",
            escape(id),
            if i == 0 { " required" } else { "" },
            escape(label)
        ));
    }
    layout(
        "Choose a patient",
        &format!(
            "<h1>Choose a patient</h1>\n<p><strong>{app}</strong> will work with the record \
             you choose.</p>\n<form method=\"post\" action=\"{action}\">\n{hidden_fields}\
             <input type=\"hidden\" name=\"step\" value=\"pick\">\n<fieldset>\n\
             <legend>Patients you can open</legend>\n{options}</fieldset>\n\
             <button type=\"submit\">Continue</button>\n</form>",
            app = escape(app),
            action = escape(action),
        ),
    )
}

/// One line of the consent page.
pub struct ScopeLine {
    pub scope: String,
    pub description: String,
    pub required: bool,
}

pub fn consent(
    action: &str,
    app: &str,
    hidden_fields: &str,
    user: &str,
    patient: Option<&str>,
    scopes: &[ScopeLine],
) -> String {
    let mut items = String::new();
    for (i, line) in scopes.iter().enumerate() {
        if line.required {
            items.push_str(&format!(
                "<li><input type=\"checkbox\" id=\"scope-{i}\" checked disabled>\
                 <input type=\"hidden\" name=\"grant\" value=\"{scope}\">\
                 <label for=\"scope-{i}\" style=\"display:inline\">{desc} \
                 <span class=\"muted\">(needed by the app)</span></label></li>\n",
                scope = escape(&line.scope),
                desc = escape(&line.description),
            ));
        } else {
            items.push_str(&format!(
                "<li><input type=\"checkbox\" id=\"scope-{i}\" name=\"grant\" value=\"{scope}\" \
                 checked><label for=\"scope-{i}\" style=\"display:inline\">{desc} \
                 <span class=\"muted\">({scope})</span></label></li>\n",
                scope = escape(&line.scope),
                desc = escape(&line.description),
            ));
        }
    }
    let patient_line = patient
        .map(|p| format!("<p>Patient record: <strong>{}</strong></p>\n", escape(p)))
        .unwrap_or_default();
    layout(
        "Allow access",
        &format!(
            "<h1>Allow {app} to use your data?</h1>\n<p>Signed in as <strong>{user}</strong>.\
             </p>\n{patient_line}<form method=\"post\" action=\"{action}\">\n{hidden_fields}\
             <input type=\"hidden\" name=\"step\" value=\"consent\">\n<fieldset>\n\
             <legend>The app asks to</legend>\n<ul>\n{items}</ul>\n</fieldset>\n\
             <button type=\"submit\" name=\"action\" value=\"approve\">Allow</button>\
             <button type=\"submit\" name=\"action\" value=\"deny\">Deny</button>\n</form>",
            app = escape(app),
            user = escape(user),
            action = escape(action),
        ),
    )
}

pub fn error(title: &str, message: &str) -> String {
    layout(
        title,
        &format!(
            "<h1>{}</h1>\n<p role=\"alert\">{}</p>\n<p class=\"muted\">You can close this page \
             and start again from the app.</p>",
            escape(title),
            escape(message)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_interpolated_is_escaped() {
        let page = login(
            "/auth/authorize",
            "<script>alert(1)</script>",
            &hidden(&[("state", "\"><img src=x>")], "c"),
            Some("a & b"),
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("\"><img"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a &amp; b"));
        assert!(page.contains("<html lang=\"en\">"));
        assert!(page.contains("<label for=\"password\">"));
    }
}
