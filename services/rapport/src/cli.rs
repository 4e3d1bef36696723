//! The command line.

use std::time::Duration;

use clap::{Parser, Subcommand};
use rapport_kit::auth::{ApiKeyEntry, Role, generate_key, mint_hs256_for};
use rapport_kit::config::Env;

/// Rapport: a CRM backend of gRPC services.
#[derive(Debug, Parser)]
#[command(name = "rapport", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve one or more services, or `all`, each on its own port, in any
    /// order (each starts after the services it calls).
    Serve {
        /// Services to run, or `all`.
        #[arg(required = true, value_parser = clap::builder::PossibleValuesParser::new(service_values()))]
        services: Vec<String>,
    },
    /// Apply database migrations of the named services (default: all), then exit.
    Migrate {
        /// Services to migrate, or `all`.
        #[arg(value_parser = clap::builder::PossibleValuesParser::new(service_values()))]
        services: Vec<String>,
    },
    /// Print a bearer token signed with the configured HS256 secret (the
    /// local development key unless AUTH_JWT_SECRET is set).
    DevToken {
        /// Role to grant; repeat for several: admin, sales_manager,
        /// sales_rep, marketing, support_agent, support_manager,
        /// integration, viewer.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The token's subject (user or client id).
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// A team the caller is in (the token's teams claim); repeat for
        /// several. The first is the team of the records they create.
        #[arg(long = "team")]
        teams: Vec<String>,
        /// Lifetime, e.g. 30m, 12h, 7d.
        #[arg(long, default_value = "12h")]
        ttl: String,
    },
    /// Create an API key for a machine caller (sent as `x-api-key`). Prints
    /// the key once and the JSON entry to add to the API_KEYS_FILE, which
    /// stores only the key's SHA-256.
    ApiKey {
        /// The caller's name (the principal's subject), e.g. erp-sync.
        #[arg(long)]
        subject: String,
        /// Roles to grant, comma separated or repeated: admin,
        /// sales_manager, sales_rep, marketing, support_agent,
        /// support_manager, integration, viewer.
        #[arg(long = "role", required = true, value_delimiter = ',')]
        roles: Vec<String>,
        /// A team the caller is in; repeat for several.
        #[arg(long = "team")]
        teams: Vec<String>,
    },
    /// Print who may call what: every service's role table, one line per
    /// RPC with the roles allowed to call it.
    Roles,
    /// Print the services this binary serves as JSON: name, default ports,
    /// whether it keeps data (and is migrated), the services it calls.
    Services,
    /// Load realistic demo data (companies, contacts in every lifecycle
    /// stage and lead source) through the running Contacts service.
    /// Idempotent: running it twice creates nothing new.
    SeedDemo {
        /// Address of the Contacts service.
        #[arg(long, default_value = rapport_contacts::config::DEFAULT_ADDR)]
        contacts: String,
        /// Number of contacts to create.
        #[arg(long, default_value_t = 200)]
        contacts_count: u32,
    },
}

/// The names `serve` and `migrate` take, each with what it is, from the
/// registry.
fn service_values() -> Vec<clap::builder::PossibleValue> {
    rapport::registry::targets()
        .into_iter()
        .map(|name| {
            let help = rapport::registry::find(name).map_or("every service", |service| service.summary);
            clap::builder::PossibleValue::new(name).help(help)
        })
        .collect()
}

/// Expands `all` (or nothing) to every service and checks names.
pub fn services(requested: &[String]) -> anyhow::Result<Vec<&'static str>> {
    let all = || rapport::registry::SERVICES.iter().map(|service| service.name).collect();
    if requested.is_empty() || requested.iter().any(|name| name == "all") {
        return Ok(all());
    }
    requested
        .iter()
        .map(|name| {
            rapport::registry::find(name).map(|service| service.name).ok_or_else(|| {
                let known: Vec<&str> = all();
                anyhow::anyhow!("unknown service {name:?}; known: {}, all", known.join(", "))
            })
        })
        .collect()
}

/// Runs the parsed command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let env = Env::process();
    match cli.command {
        Command::Serve { services: names } => rapport::serve::serve(&env, &services(&names)?).await,
        Command::Migrate { services: names } => rapport::serve::migrate(&env, &services(&names)?).await,
        Command::DevToken { roles, subject, teams, ttl } => {
            println!("{}", dev_token(&env, (&roles, &teams), &subject, &ttl)?);
            Ok(())
        }
        Command::ApiKey { subject, roles, teams } => {
            let (key, entry) = api_key(&subject, &roles, &teams)?;
            println!("API key for {subject} (shown only now; keep it secret, send it as `x-api-key`):");
            println!("{key}");
            println!();
            println!("Add this entry to the \"keys\" array of the API_KEYS_FILE:");
            println!("{entry}");
            Ok(())
        }
        Command::Roles => {
            print!("{}", roles());
            Ok(())
        }
        Command::Services => {
            println!("{}", serde_json::to_string_pretty(&rapport::registry::describe())?);
            Ok(())
        }
        Command::SeedDemo { contacts, contacts_count } => {
            crate::seed::seed(&env, &contacts, contacts_count).await
        }
    }
}

/// Every role table of every service, one line per RPC.
fn roles() -> String {
    let mut out = String::new();
    for service in rapport::registry::SERVICES {
        for policy in (service.policies)() {
            for method in policy.methods() {
                let roles: Vec<&str> =
                    policy.allowed(method).unwrap_or_default().iter().map(|role| role.as_str()).collect();
                out.push_str(&format!("{}/{method}: {}\n", policy.service(), roles.join(", ")));
            }
        }
    }
    out
}

fn parse_roles(roles: &[String]) -> anyhow::Result<Vec<Role>> {
    roles
        .iter()
        .map(|name| {
            Role::parse(name.trim()).ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
                anyhow::anyhow!("unknown role {name:?}; known: {}", known.join(", "))
            })
        })
        .collect()
}

/// A new key and its keys-file entry as one line of JSON.
fn api_key(subject: &str, roles: &[String], teams: &[String]) -> anyhow::Result<(String, String)> {
    let subject = subject.trim();
    anyhow::ensure!(!subject.is_empty(), "--subject must not be empty");
    let roles = parse_roles(roles)?;
    check_teams(teams)?;
    let key = generate_key();
    let entry = serde_json::to_string(&ApiKeyEntry::new(&key, subject, &roles).with_teams(teams))?;
    Ok((key, entry))
}

fn check_teams(teams: &[String]) -> anyhow::Result<()> {
    for team in teams {
        anyhow::ensure!(rapport_kit::auth::is_team_id(team), "--team {team:?} is not a team id");
    }
    anyhow::ensure!(
        teams.len() <= rapport_kit::auth::MAX_TEAMS,
        "at most {} teams",
        rapport_kit::auth::MAX_TEAMS
    );
    Ok(())
}

fn dev_token(
    env: &Env,
    (roles, teams): (&[String], &[String]),
    subject: &str,
    ttl: &str,
) -> anyhow::Result<String> {
    let roles = parse_roles(roles)?;
    check_teams(teams)?;
    let ttl: Duration = rapport_kit::config::parse_duration(ttl)
        .ok_or_else(|| anyhow::anyhow!("--ttl {ttl:?} is not a duration such as 30m or 12h"))?;
    let auth = rapport_kit::auth::config_from_env(env)?;
    let rapport_kit::auth::KeySource::Secret(secret) = &auth.keys else {
        anyhow::bail!("dev-token signs with AUTH_JWT_SECRET; AUTH_JWKS_FILE keys cannot sign");
    };
    let teams: Vec<&str> = teams.iter().map(String::as_str).collect();
    let principal = rapport_kit::auth::Principal::new(subject, roles).with_teams(&teams);
    Ok(mint_hs256_for(secret, (&auth.issuer, &auth.audience), &principal, ttl)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn service_names_expand_and_are_checked() {
        assert_eq!(services(&["all".into()]).unwrap(), ["contacts", "pipeline", "support", "gateway"]);
        assert_eq!(services(&[]).unwrap(), ["contacts", "pipeline", "support", "gateway"]);
        assert_eq!(services(&["contacts".into()]).unwrap(), ["contacts"]);
        assert!(services(&["nope".into()]).is_err());
    }

    #[test]
    fn the_role_listing_names_every_rpc_with_its_roles() {
        let listing = roles();
        assert!(
            listing.contains("rapport.contacts.v1.ContactService/DeleteContact: admin, sales_manager\n"),
            "{listing}"
        );
        let lines = listing.lines().count();
        let rpcs: usize = rapport_proto::SERVICES
            .iter()
            .filter(|(name, _)| !name.starts_with("rapport.bench."))
            .map(|(_, methods)| methods.len())
            .sum();
        assert_eq!(lines, rpcs);
    }

    #[test]
    fn dev_tokens_verify_with_the_same_settings() {
        let env = Env::from_pairs([(rapport_kit::auth::DEV_MODE, "true")]);
        let roles = ["admin".to_owned(), "viewer".to_owned()];
        let token = dev_token(&env, (&roles, &["east".to_owned()]), "me", "1h").unwrap();
        let verifier =
            rapport_kit::auth::Verifier::new(rapport_kit::auth::config_from_env(&env).unwrap()).unwrap();
        let principal = verifier.verify(&token).unwrap();
        assert_eq!(principal.subject, "me");
        assert_eq!(principal.roles, vec![Role::Admin, Role::Viewer]);
        assert_eq!(principal.teams, ["east"]);
        assert!(dev_token(&env, (&["wizard".into()], &[]), "me", "1h").is_err());
        assert!(dev_token(&env, (&["admin".into()], &[]), "me", "soon").is_err());
        assert!(dev_token(&env, (&["admin".into()], &[" ".into()]), "me", "1h").is_err());
    }

    #[test]
    fn api_key_entries_verify_their_key() {
        let (key, entry) =
            api_key("erp-sync", &["integration".into(), "viewer".into()], &["east".into()]).unwrap();
        assert!(key.starts_with("rk_"));
        assert!(!entry.contains(&key), "the entry must not contain the key");
        let entry: ApiKeyEntry = serde_json::from_str(&entry).unwrap();
        let keys = rapport_kit::auth::ApiKeys::from_entries(vec![entry]).unwrap();
        let principal = keys.verify(&key).unwrap();
        assert_eq!(principal.subject, "erp-sync");
        assert_eq!(principal.roles, vec![Role::Integration, Role::Viewer]);
        assert_eq!(principal.teams, ["east"]);
        assert!(api_key("x", &["wizard".into()], &[]).is_err());
        assert!(api_key(" ", &["viewer".into()], &[]).is_err());
    }

    #[test]
    fn api_key_roles_may_be_comma_separated() {
        let cli = Cli::try_parse_from(["rapport", "api-key", "--subject", "erp", "--role", "admin,viewer"])
            .unwrap();
        let Command::ApiKey { roles, .. } = cli.command else { panic!("not api-key") };
        assert_eq!(roles, ["admin", "viewer"]);
    }
}
