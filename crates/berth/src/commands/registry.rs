//! `login`, `logout` and `search`: credentials checked by the daemon (`POST /auth`) and
//! kept in docker's `config.json` ([`crate::config`]), searches through the daemon
//! (`GET /images/search`) with the credentials of the searched index.

use super::{filters_json, Ctx};
use crate::client::bytes_body;
use crate::config::{self, AuthConfig, ConfigFile, INDEX_SERVER};
use crate::flags::Parsed;
use crate::template::{map, render_rows, str_value, Format};
use crate::{term, StatusError};
use gotmpl::Value;
use serde_json::Value as Json;
use std::io::{BufRead as _, Read as _, Write as _};

fn config_file(ctx: &Ctx) -> anyhow::Result<ConfigFile> {
    ConfigFile::load(&config::config_dir(Some(&ctx.config_dir)))
}

/// The server a `login`/`logout` argument names: Docker Hub's key by default, otherwise
/// the hostname of the argument (`http://host:5000/v2/` → `host:5000`).
pub fn login_server(arg: Option<&str>) -> String {
    match arg {
        None | Some("") | Some("docker.io") => INDEX_SERVER.to_string(),
        Some(s) => config::convert_to_hostname(s),
    }
}

/// `POST /auth`; returns the daemon's status and identity token.
async fn auth(ctx: &mut Ctx, ac: &AuthConfig) -> anyhow::Result<(String, String)> {
    let client = ctx.client().await?.clone();
    let res = client
        .send(
            hyper::Method::POST,
            "/auth",
            &[],
            bytes_body(ac.to_json_string()),
            &[("Content-Type", "application/json".to_string())],
        )
        .await?;
    use http_body_util::BodyExt as _;
    let body = res.into_body().collect().await?.to_bytes();
    let v: Json = serde_json::from_slice(&body).unwrap_or(Json::Null);
    Ok((
        v["Status"].as_str().unwrap_or("").to_string(),
        v["IdentityToken"].as_str().unwrap_or("").to_string(),
    ))
}

fn prompt(message: &str) -> anyhow::Result<String> {
    print!("{message}");
    std::io::stdout().flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(line.trim().to_string())
}

/// docker's `PromptUserForCredentials`.
fn prompt_credentials(
    user: &str,
    password: &str,
    default_user: &str,
    server: &str,
) -> anyhow::Result<AuthConfig> {
    if (user.trim().is_empty() || password.trim().is_empty()) && !term::stdin_is_tty() {
        anyhow::bail!("Error: Cannot perform an interactive login from a non TTY device");
    }
    let mut user = user.trim().to_string();
    if user.is_empty() {
        let msg = if default_user.is_empty() {
            "Username: ".to_string()
        } else {
            format!("Username ({default_user}): ")
        };
        user = prompt(&msg)?;
        if user.is_empty() {
            user = default_user.to_string();
        }
        if user.is_empty() {
            anyhow::bail!("Error: Non-null Username Required");
        }
    }
    let mut password = password.trim().to_string();
    if password.is_empty() {
        let echo = term::NoEcho::enable()?;
        password = prompt("Password: ")?;
        drop(echo);
        println!();
        if password.is_empty() {
            anyhow::bail!("Error: Password Required");
        }
    }
    Ok(AuthConfig {
        username: user,
        password,
        server_address: server.to_string(),
        ..Default::default()
    })
}

fn store(cfg: &mut ConfigFile, mut ac: AuthConfig, token: String) -> anyhow::Result<()> {
    if !token.is_empty() {
        ac.password.clear();
        ac.identity_token = token;
    }
    let before = cfg.file_get(&ac.server_address);
    cfg.store_auth(&ac)
        .map_err(|e| anyhow::anyhow!("Error saving credentials: {e}"))?;
    if cfg.stores_in_file(&ac.server_address) && before != ac {
        eprintln!(
            "\nWARNING! Your credentials are stored unencrypted in '{}'.\nConfigure a credential helper to remove this warning. See\nhttps://docs.docker.com/go/credential-store/\n",
            cfg.path().display()
        );
    }
    Ok(())
}

pub async fn login(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let user = p.string("username");
    let mut password = p.string("password");
    let from_stdin = p.bool("password-stdin");
    if !password.is_empty() && from_stdin {
        anyhow::bail!("conflicting options: cannot specify both --password and --password-stdin");
    }
    if from_stdin && user.is_empty() {
        anyhow::bail!("the --password-stdin option requires --username to be set");
    }
    if !password.is_empty() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if from_stdin {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        let s = s.strip_suffix('\n').unwrap_or(&s);
        password = s.strip_suffix('\r').unwrap_or(s).to_string();
    }
    let server = login_server(p.args.first().map(String::as_str));
    let mut cfg = config_file(ctx)?;
    // Stored credentials are tried first when no new ones are given.
    let stored = if user.is_empty() && password.is_empty() {
        cfg.get_auth(&server).unwrap_or_default()
    } else {
        AuthConfig::default()
    };
    if !stored.username.is_empty() && !stored.password.is_empty() {
        eprintln!(
            "Authenticating with existing credentials... [Username: {}]\n\n Info -> To login with a different account, run 'berth logout' followed by 'berth login'\n\n",
            stored.username
        );
        let ac = AuthConfig {
            server_address: server.clone(),
            ..stored.clone()
        };
        match auth(ctx, &ac).await {
            Ok((status, token)) => {
                store(&mut cfg, ac, token)?;
                if !status.is_empty() {
                    println!("{status}");
                }
                return Ok(());
            }
            Err(e) => {
                let unauthorized = e
                    .downcast_ref::<crate::client::ClientError>()
                    .and_then(|c| c.status())
                    == Some(401);
                if unauthorized {
                    eprintln!("Stored credentials invalid or expired");
                } else {
                    eprintln!("Login did not succeed, error: {e}");
                }
            }
        }
    }
    let ac = prompt_credentials(&user, &password, &stored.username, &server)?;
    let (status, token) = auth(ctx, &ac).await?;
    store(&mut cfg, ac, token)?;
    if !status.is_empty() {
        println!("{status}");
    }
    Ok(())
}

pub async fn logout(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let arg = p.args.first().map(String::as_str).unwrap_or("");
    let (server, hostname, tries) = if arg.is_empty() {
        (
            INDEX_SERVER.to_string(),
            INDEX_SERVER.to_string(),
            vec![INDEX_SERVER.to_string()],
        )
    } else {
        let h = config::convert_to_hostname(arg);
        (
            arg.to_string(),
            h.clone(),
            vec![
                arg.to_string(),
                h.clone(),
                format!("http://{h}"),
                format!("https://{h}"),
            ],
        )
    };
    let _ = server;
    println!("Removing login credentials for {hostname}");
    let mut cfg = config_file(ctx)?;
    let mut errs = Vec::new();
    for r in &tries {
        if let Err(e) = cfg.erase_auth(r) {
            errs.push(format!("{r}: {e}"));
        }
    }
    if errs.len() == tries.len() {
        eprintln!("WARNING: could not erase credentials:");
        for e in errs {
            eprintln!("{e}");
        }
    }
    Ok(())
}

/// The credentials key of the index a search term names (`host:5000/name` → `host:5000`).
pub fn search_index(term: &str) -> String {
    match term.split_once('/') {
        Some((host, _)) if host.contains('.') || host.contains(':') || host == "localhost" => {
            config::auth_config_key(host)
        }
        _ => INDEX_SERVER.to_string(),
    }
}

/// One `search` row; `json` rows say `true`/`false` where tables say `[OK]`/nothing.
pub fn search_row(r: &Json, trunc: bool, json: bool) -> Value {
    let desc = r["description"]
        .as_str()
        .unwrap_or("")
        .replace(['\n', '\r'], " ");
    let desc = if trunc {
        super::list::ellipsis(&desc, 45)
    } else {
        desc
    };
    let flag = |b: bool| match (b, json) {
        (true, true) => "true",
        (true, false) => "[OK]",
        (false, true) => "false",
        (false, false) => "",
    };
    map([
        ("Name", str_value(r["name"].as_str().unwrap_or(""))),
        ("Description", str_value(desc)),
        (
            "StarCount",
            str_value(r["star_count"].as_i64().unwrap_or(0).to_string()),
        ),
        (
            "IsOfficial",
            str_value(flag(r["is_official"].as_bool().unwrap_or(false))),
        ),
    ])
}

/// Renders search results as docker 28 does.
pub fn render_search(results: &[Json], user_format: &str, trunc: bool) -> anyhow::Result<String> {
    let format = match user_format {
        "" | "table" => "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}",
        f => f,
    };
    let f = Format::new(format);
    let json = f.text.contains("{{json .}}");
    let rows: Vec<Value> = results.iter().map(|r| search_row(r, trunc, json)).collect();
    let headers = map([
        ("Name", str_value("NAME")),
        ("Description", str_value("DESCRIPTION")),
        ("StarCount", str_value("STARS")),
        ("IsOfficial", str_value("OFFICIAL")),
    ]);
    render_rows(&f, &headers, &rows)
}

pub async fn search(ctx: &mut Ctx, p: &Parsed) -> anyhow::Result<()> {
    let term = &p.args[0];
    if p.list("filter")
        .iter()
        .any(|f| f.starts_with("is-automated"))
    {
        eprintln!("WARNING: the \"is-automated\" filter is deprecated, and searching for \"is-automated=true\" will not yield any results in future.");
    }
    let limit = p.string("limit");
    let limit: i64 = if limit.is_empty() {
        0
    } else {
        limit.parse().map_err(|_| {
            crate::opts::InvalidArgument(format!("invalid argument \"{limit}\" for \"--limit\" flag: strconv.ParseInt: parsing \"{limit}\": invalid syntax"))
        })?
    };
    let cfg = config_file(ctx)?;
    let auth = cfg
        .get_auth(&search_index(term))
        .unwrap_or_default()
        .encode_header();
    let mut q = vec![("term", term.clone())];
    if limit > 0 {
        q.push(("limit", limit.to_string()));
    }
    if let Some(f) = filters_json(&p.list("filter"))? {
        q.push(("filters", f));
    }
    let client = ctx.client().await?.clone();
    let res = client
        .send(
            hyper::Method::GET,
            "/images/search",
            &q,
            crate::client::empty_body(),
            &[("X-Registry-Auth", auth)],
        )
        .await?;
    use http_body_util::BodyExt as _;
    let body = res.into_body().collect().await?.to_bytes();
    let v: Json = serde_json::from_slice(&body)?;
    let results = v.as_array().cloned().unwrap_or_default();
    print!(
        "{}",
        render_search(&results, &p.string("format"), !p.bool("no-trunc"))
            .map_err(|e| StatusError::exit(1, e.to_string()))?
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn login_servers_normalise_to_hostnames_or_the_hub_key() {
        assert_eq!(login_server(None), INDEX_SERVER);
        assert_eq!(
            login_server(Some("http://127.0.0.1:5000/v2/")),
            "127.0.0.1:5000"
        );
        assert_eq!(login_server(Some("127.0.0.1:5000")), "127.0.0.1:5000");
    }

    #[test]
    fn search_terms_pick_their_index() {
        assert_eq!(search_index("busybox"), INDEX_SERVER);
        assert_eq!(search_index("library/busybox"), INDEX_SERVER);
        assert_eq!(search_index("127.0.0.1:5002/busybox"), "127.0.0.1:5002");
    }

    fn results() -> Vec<Json> {
        vec![
            json!({"name": "library/busybox", "description": "Busybox base image.", "star_count": 3100, "is_official": true}),
            json!({"name": "someone/busybox-tools", "description": "A long description that goes on and on well beyond forty five characters for sure", "star_count": 12, "is_official": false}),
        ]
    }

    #[test]
    fn search_table_truncates_descriptions_at_45() {
        assert_eq!(
            render_search(&results(), "", true).unwrap(),
            "NAME                    DESCRIPTION                                     STARS     OFFICIAL\n\
             library/busybox         Busybox base image.                             3100      [OK]\n\
             someone/busybox-tools   A long description that goes on and on well …   12        \n"
        );
    }

    #[test]
    fn search_json_says_true_and_false() {
        assert_eq!(
            render_search(&results()[..1], "json", true).unwrap(),
            "{\"Description\":\"Busybox base image.\",\"IsOfficial\":\"true\",\"Name\":\"library/busybox\",\"StarCount\":\"3100\"}\n"
        );
    }
}
