//! `fulfillctl keys`: create, list and revoke API keys through the Inventory's access RPCs. Needs a
//! key with the admin scope; keys are made in the mode of that key.

use clap::{Subcommand, ValueEnum};
use fulfillment_proto::access::v1 as pb;
use fulfillment_proto::access::v1::access_service_client::AccessServiceClient;

use crate::Conn;
use crate::display;

type Client = AccessServiceClient<Conn>;

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Creates a key and prints its secret, the only time it is shown.
    Create {
        /// A name for people, e.g. "checkout backend".
        #[arg(long)]
        name: String,
        /// What the key may do (repeat for several); read and write when none is given.
        #[arg(long = "scope", value_enum)]
        scopes: Vec<ScopeArg>,
    },
    /// Lists the keys of the mode of the key used.
    List {
        /// Lists revoked keys too.
        #[arg(long)]
        include_revoked: bool,
    },
    /// Revokes a key: it stops working within the services' key cache time (2 s by default).
    Revoke { id: String },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub(crate) enum ScopeArg {
    Read,
    Write,
    Admin,
}

pub(crate) async fn run(client: &mut Client, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create { name, scopes } => {
            let scopes = scopes
                .into_iter()
                .map(|scope| match scope {
                    ScopeArg::Read => pb::Scope::Read,
                    ScopeArg::Write => pb::Scope::Write,
                    ScopeArg::Admin => pb::Scope::Admin,
                })
                .map(i32::from)
                .collect();
            let request = pb::CreateApiKeyRequest { name, scopes, service: String::new() };
            let created = client.create_api_key(request).await.map_err(display::status)?.into_inner();
            if let Some(key) = &created.api_key {
                println!("{}", line(key));
            }
            println!("secret: {}", created.secret);
            println!("(shown only now: store it where the caller reads it)");
        }
        KeysCommand::List { include_revoked } => {
            let listed = client
                .list_api_keys(pb::ListApiKeysRequest { include_revoked })
                .await
                .map_err(display::status)?
                .into_inner();
            println!("{:<38} {:<18} {:<8} {:<18} NAME", "ID", "PREFIX", "MODE", "SCOPES");
            for key in &listed.api_keys {
                println!("{}", line(key));
            }
        }
        KeysCommand::Revoke { id } => {
            let revoked =
                client.revoke_api_key(pb::RevokeApiKeyRequest { id }).await.map_err(display::status)?.into_inner();
            if let Some(key) = &revoked.api_key {
                println!("revoked {}", line(key));
            }
        }
    }
    Ok(())
}

fn line(key: &pb::ApiKey) -> String {
    let mode = match (key.service.as_str(), key.live_mode) {
        ("", true) => "live".to_owned(),
        ("", false) => "test".to_owned(),
        (service, _) => service.to_owned(),
    };
    let scopes: Vec<&str> = key
        .scopes()
        .map(|scope| scope.as_str_name().trim_start_matches("SCOPE_"))
        .map(|scope| match scope {
            "READ" => "read",
            "WRITE" => "write",
            "ADMIN" => "admin",
            _ => "?",
        })
        .collect();
    let revoked = if key.revoked_time.is_some() { " (revoked)" } else { "" };
    format!("{:<38} {:<18} {:<8} {:<18} {}{revoked}", key.id, key.prefix, mode, scopes.join(","), key.name)
}
