//! The authorization server's server-rendered pages: sign-in, patient picker, consent, the
//! "apps you have allowed" page (see and take back access) and error pages. Plain, accessible
//! HTML (a `lang`, labelled controls, one `h1`, landmarks, alerts announced with `role="alert"`,
//! WCAG 2.1 AA contrast), written for patients as much as for clinicians (technical scope names
//! only inside a `<details>` element), no scripts or external assets, and every interpolated
//! value escaped by [`escape`]: pages are built with `format!`, not a template engine, so
//! nothing is escaped unless it goes through it.

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

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:38rem;margin:2rem auto;\
padding:0 1rem;line-height:1.5;color:#1a1a1a}h1{font-size:1.5rem}h2{font-size:1.2rem;\
margin-top:2rem}label{display:block;margin-top:1rem;font-weight:600}\
li label{display:inline;font-weight:400}input[type=text],input[type=password]{width:100%;\
padding:.5rem;font-size:1rem;box-sizing:border-box}button{margin-top:1.25rem;\
margin-right:.5rem;padding:.6rem 1.2rem;font-size:1rem}fieldset{border:1px solid #767676;\
padding:1rem}ul.scopes{list-style:none;padding-left:0}ul.scopes li{margin:.8rem 0}\
.alert{border-left:4px solid #b00020;padding:.5rem 1rem;background:#fdecee}\
.done{border-left:4px solid #1b6e20;padding:.5rem 1rem;background:#e8f5e9}\
.hint{display:block;margin-left:1.6rem;color:#4a4a4a}li{margin:.4rem 0}.muted{color:#4a4a4a}\
footer{margin-top:3rem;border-top:1px solid #767676;padding-top:.5rem;color:#4a4a4a}\
a{color:#0b4f9c}:focus{outline:3px solid #1a5fb4}";

/// Who runs the service, said at the foot of every page a person signs in or decides on.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    /// The server's host (`coplan.example.org`).
    pub host: &'a str,
    /// The organisation that runs it, when configured.
    pub operator: Option<&'a str>,
    /// The "apps you have allowed" page.
    pub apps_url: &'a str,
}

impl Site<'_> {
    fn footer(&self, link_to_apps: bool) -> String {
        let who = match self.operator {
            Some(operator) => format!(
                "This is the Coplan care plan service at {}, run by {}.",
                escape(self.host),
                escape(operator)
            ),
            None => format!(
                "This is the Coplan care plan service at {}.",
                escape(self.host)
            ),
        };
        let apps = if link_to_apps {
            format!(
                " <a href=\"{}\">See the apps you have allowed, or take access back</a>.",
                escape(self.apps_url)
            )
        } else {
            String::new()
        };
        format!("<footer>\n<p>{who}{apps}</p>\n</footer>\n")
    }
}

/// A whole page.
pub fn layout(title: &str, body: &str) -> String {
    page(title, body, "")
}

fn page(title: &str, body: &str, footer: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} – Coplan</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n{body}\n\
         </main>\n{footer}</body>\n</html>\n",
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

fn credentials_fields() -> &'static str {
    "<label for=\"username\">Username</label>\n\
     <input type=\"text\" id=\"username\" name=\"username\" autocomplete=\"username\" required \
     autofocus>\n<label for=\"password\">Password</label>\n\
     <input type=\"password\" id=\"password\" name=\"password\" \
     autocomplete=\"current-password\" required>\n"
}

/// The sign-in page of an authorization request: who asks, who runs the service, and a way back
/// to the app without signing in.
pub fn login(
    action: &str,
    app: &str,
    hidden_fields: &str,
    error: Option<&str>,
    site: &Site,
) -> String {
    page(
        "Sign in",
        &format!(
            "<h1>Sign in to Coplan</h1>\n<p><strong>{app}</strong> would like to use Coplan, \
             the care plan service, on your behalf. Sign in to decide what it may do. Your \
             password is sent only to Coplan, never to {app}.</p>\n{alert}<form method=\"post\" action=\"{action}\">\n\
             {hidden_fields}<input type=\"hidden\" name=\"step\" value=\"login\">\n\
             {fields}<button type=\"submit\" name=\"action\" value=\"login\">Sign in</button>\
             <button type=\"submit\" name=\"action\" value=\"cancel\" formnovalidate>Cancel and \
             go back to {app}</button>\n</form>",
            app = escape(app),
            action = escape(action),
            alert = alert(error),
            fields = credentials_fields(),
        ),
        &site.footer(true),
    )
}

pub fn picker(
    action: &str,
    app: &str,
    hidden_fields: &str,
    patients: &[(String, String)],
    site: &Site,
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
    page(
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
        &site.footer(true),
    )
}

/// One line of the consent page.
pub struct ScopeLine {
    pub scope: String,
    /// The scope in plain language.
    pub description: String,
    /// Carries the launch itself: shown ticked and fixed.
    pub required: bool,
    /// Shown ticked (unticked only when the user unticked it and is being warned).
    pub ticked: bool,
    /// Shown under the line: what a change permission means, what the app loses without it
    /// (the only data permission).
    pub hints: Vec<String>,
}

/// What the consent page shows besides the permissions.
pub struct Consent<'a> {
    pub action: &'a str,
    pub app: &'a str,
    pub hidden_fields: &'a str,
    pub csrf: &'a str,
    pub user: &'a str,
    /// Whose record, in words ("Your own record (Alex Smith)", "Ann Doe (born …)").
    pub record: Option<&'a str>,
    /// What the app would use, for the heading: "your Coplan care record", "Ann Doe's record".
    pub heading: &'a str,
    pub scopes: &'a [ScopeLine],
    /// Every data permission was unticked: say what that means before going on.
    pub warn_no_data: bool,
}

pub fn consent(c: &Consent, site: &Site) -> String {
    let mut items = String::new();
    let mut technical = String::new();
    for (i, line) in c.scopes.iter().enumerate() {
        let hint_id = format!("scope-{i}-hint");
        let hint = if line.hints.is_empty() {
            String::new()
        } else {
            format!(
                "<span class=\"hint\" id=\"{hint_id}\">{}</span>",
                escape(&line.hints.join(" "))
            )
        };
        let described = if !line.hints.is_empty() {
            format!(" aria-describedby=\"{hint_id}\"")
        } else {
            String::new()
        };
        if line.required {
            items.push_str(&format!(
                "<li><input type=\"checkbox\" id=\"scope-{i}\" checked disabled>\
                 <input type=\"hidden\" name=\"grant\" value=\"{scope}\">\
                 <label for=\"scope-{i}\">{desc} <span class=\"muted\">(always part of \
                 starting the app)</span></label>{hint}</li>\n",
                scope = escape(&line.scope),
                desc = escape(&line.description),
            ));
        } else {
            items.push_str(&format!(
                "<li><input type=\"checkbox\" id=\"scope-{i}\" name=\"grant\" value=\"{scope}\"\
                 {checked}{described}><label for=\"scope-{i}\">{desc}</label>{hint}</li>\n",
                scope = escape(&line.scope),
                desc = escape(&line.description),
                checked = if line.ticked { " checked" } else { "" },
            ));
        }
        technical.push_str(&format!(
            "<dt><code>{}</code></dt><dd>{}</dd>\n",
            escape(&line.scope),
            escape(&line.description)
        ));
    }
    let record_line = c
        .record
        .map(|r| format!("<p>Record: <strong>{}</strong></p>\n", escape(r)))
        .unwrap_or_default();
    let warning = if c.warn_no_data {
        alert(Some(&format!(
            "You unticked every permission to see or change the record. {} will then not be \
             able to use anything in it, and will probably not work. Tick at least one, or \
             choose \u{201c}Allow anyway\u{201d}.",
            c.app
        )))
    } else {
        String::new()
    };
    let (allow_label, confirm) = if c.warn_no_data {
        (
            "Allow anyway",
            "<input type=\"hidden\" name=\"no_data\" value=\"confirmed\">\n",
        )
    } else {
        ("Allow", "")
    };
    page(
        "Allow access",
        &format!(
            "<h1>Allow {app} to use {heading}?</h1>\n{warning}<p>You are signed \
             in as <strong>{user}</strong>.</p>\n{record_line}<form method=\"post\" \
             action=\"{action}\">\n{hidden_fields}<input type=\"hidden\" name=\"step\" \
             value=\"consent\">\n{confirm}<fieldset>\n<legend>{app} asks to</legend>\n\
             <ul class=\"scopes\">\n{items}</ul>\n</fieldset>\n<details>\n<summary>What the app \
             asked for, in technical terms</summary>\n<dl>\n{technical}</dl>\n</details>\n\
             <p>You can take access back at any time on the page \
             <a href=\"{apps}\" target=\"_blank\" rel=\"noopener\">Apps you have allowed \
             (opens in a new tab)</a>.</p>\n<button type=\"submit\" name=\"action\" \
             value=\"approve\">{allow_label}</button><button type=\"submit\" name=\"action\" \
             value=\"deny\">Don\u{2019}t allow</button>\n</form>\n\
             <form method=\"post\" action=\"/auth/logout\">\n{csrf_field}\
             <button type=\"submit\">Not you? Sign out</button>\n</form>",
            csrf_field = hidden(&[], c.csrf),
            app = escape(c.app),
            heading = escape(c.heading),
            user = escape(c.user),
            action = escape(c.action),
            hidden_fields = c.hidden_fields,
            apps = escape(site.apps_url),
        ),
        &site.footer(false),
    )
}

/// One app on the "apps you have allowed" page.
pub struct AllowedApp {
    pub client_id: String,
    pub name: String,
    /// "3 March 2027"
    pub since: String,
    /// "until 1 June 2027, unless you take it back"
    pub until: String,
    /// What it may do, in plain language.
    pub can: Vec<String>,
}

/// The page where a signed-in user sees the apps they allowed and takes access back.
pub fn apps(
    action: &str,
    user: &str,
    csrf: &str,
    apps: &[AllowedApp],
    notice: Option<&str>,
    site: &Site,
) -> String {
    let mut sections = String::new();
    for (i, app) in apps.iter().enumerate() {
        let mut can = String::new();
        for line in &app.can {
            can.push_str(&format!("<li>{}</li>\n", escape(line)));
        }
        sections.push_str(&format!(
            "<section aria-labelledby=\"app-{i}\">\n<h2 id=\"app-{i}\">{name}</h2>\n\
             <p>Allowed on {since}. It has access {until}.</p>\n<p>It may:</p>\n<ul>\n{can}</ul>\n\
             <form method=\"post\" action=\"{action}\">\n{fields}\
             <button type=\"submit\">Take back access for {name}</button>\n</form>\n</section>\n",
            name = escape(&app.name),
            since = escape(&app.since),
            until = escape(&app.until),
            action = escape(action),
            fields = hidden(&[("step", "revoke"), ("client_id", &app.client_id)], csrf),
        ));
    }
    let intro = if apps.is_empty() {
        "No app can use Coplan on your behalf at the moment."
    } else {
        "These apps can use Coplan on your behalf. When you take access back, the app cannot \
         see or change anything any more, straight away; it would have to ask you again."
    };
    let notice = notice
        .map(|n| format!("<p class=\"done\" role=\"status\">{}</p>\n", escape(n)))
        .unwrap_or_default();
    page(
        "Apps you have allowed",
        &format!(
            "<h1>Apps you have allowed</h1>\n{notice}<p>You are signed in as \
             <strong>{user}</strong>. {intro}</p>\n{sections}\
             <form method=\"post\" action=\"/auth/logout\">\n{csrf_field}\
             <button type=\"submit\">Sign out</button>\n</form>",
            user = escape(user),
            csrf_field = hidden(&[], csrf),
        ),
        &site.footer(false),
    )
}

/// The "apps you have allowed" page before signing in.
pub fn apps_login(action: &str, hidden_fields: &str, error: Option<&str>, site: &Site) -> String {
    page(
        "Apps you have allowed",
        &format!(
            "<h1>Apps you have allowed</h1>\n<p>Sign in to see which apps can use your Coplan \
             care record, and to take access back.</p>\n{alert}<form method=\"post\" \
             action=\"{action}\">\n{hidden_fields}<input type=\"hidden\" name=\"step\" \
             value=\"login\">\n{fields}<button type=\"submit\">Sign in</button>\n</form>",
            action = escape(action),
            alert = alert(error),
            fields = credentials_fields(),
        ),
        &site.footer(false),
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

    const SITE: Site = Site {
        host: "coplan.example",
        operator: Some("Example <Health> Trust"),
        apps_url: "https://coplan.example/auth/apps",
    };

    #[test]
    fn everything_interpolated_is_escaped() {
        let page = login(
            "/auth/authorize",
            "<script>alert(1)</script>",
            &hidden(&[("state", "\"><img src=x>")], "c"),
            Some("a & b"),
            &SITE,
        );
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("\"><img"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
        assert!(page.contains("a &amp; b"));
        assert!(page.contains("Example &lt;Health&gt; Trust"));
        assert!(page.contains("<html lang=\"en\">"));
        assert!(page.contains("<label for=\"password\">"));

        let listed = apps(
            "/auth/apps",
            "<b>amy</b>",
            "c\"",
            &[AllowedApp {
                client_id: "x\"><script>".into(),
                name: "<i>App</i>".into(),
                since: "1 May 2027".into(),
                until: "until <now>".into(),
                can: vec!["See <everything>".into()],
            }],
            Some("<gone>"),
            &SITE,
        );
        for raw in [
            "<b>amy",
            "<i>App",
            "x\"><script>",
            "<everything>",
            "<gone>",
            "<now>",
        ] {
            assert!(!listed.contains(raw), "{raw} unescaped: {listed}");
        }
        assert!(listed.contains("value=\"c&quot;\""));
    }

    #[test]
    fn the_consent_page_keeps_technical_names_in_the_details_only() {
        let lines = [ScopeLine {
            scope: "patient/*.rs".into(),
            description: "See everything in your record".into(),
            required: false,
            ticked: true,
            hints: vec!["Without this the app cannot see your record.".into()],
        }];
        let html = consent(
            &Consent {
                action: "/auth/authorize",
                app: "App",
                hidden_fields: "",
                csrf: "c",
                user: "alex",
                record: Some("Your own record"),
                heading: "your Coplan care record",
                scopes: &lines,
                warn_no_data: false,
            },
            &SITE,
        );
        let (before, details) = html.split_once("<details>").expect("details");
        // Outside the details the scope is only the checkbox's value, never text.
        assert_eq!(
            before.matches("patient/*.rs").count(),
            before.matches("value=\"patient/*.rs\"").count(),
            "{before}"
        );
        assert!(details.contains("<code>patient/*.rs</code>"));
        assert!(html.contains("aria-describedby=\"scope-0-hint\""));
    }
}
