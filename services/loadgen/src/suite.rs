//! The suite under test: each service a real process from the release binaries, over fresh
//! databases, stopped (and its databases dropped) at the end.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use sea_orm::ConnectionTrait;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Where the three services keep their data for one run.
#[derive(Debug)]
pub struct Databases {
    /// The Catalog's, the Inventory's and the Reservation service's URLs.
    pub urls: [String; 3],
    admin: Option<String>,
    run: String,
    isolation: Option<&'static str>,
    names: Vec<String>,
    directory: Option<PathBuf>,
}

impl Databases {
    /// Three SQLite files in a fresh directory under `root`.
    pub fn sqlite(root: &Path, run: &str) -> std::io::Result<Self> {
        let directory = root.join(run);
        std::fs::create_dir_all(&directory)?;
        let url = |name: &str| format!("sqlite://{}/{name}.db", directory.display());
        Ok(Self {
            urls: [url("catalog"), url("inventory"), url("reservation")],
            admin: None,
            run: run.to_owned(),
            isolation: None,
            names: Vec::new(),
            directory: Some(directory),
        })
    }

    /// Three fresh databases on the PostgreSQL server that `admin` connects to.
    /// With `isolation`, each database runs at that level by default (`serializable`, say).
    pub async fn postgres(admin: &str, run: &str, isolation: Option<&'static str>) -> Result<Self, sea_orm::DbErr> {
        let connection = sea_orm::Database::connect(admin).await?;
        let names: Vec<String> = ["catalog", "inventory", "reservation"].iter().map(|s| format!("{run}_{s}")).collect();
        for name in &names {
            create(&connection, name, isolation).await?;
        }
        let base = admin.rsplit_once('/').map_or(admin, |(base, _)| base);
        let url = |name: &str| format!("{base}/{name}");
        Ok(Self {
            urls: [url(&names[0]), url(&names[1]), url(&names[2])],
            admin: Some(admin.to_owned()),
            run: run.to_owned(),
            isolation,
            names,
            directory: None,
        })
    }

    /// One more database beside the services', for a baseline's own tables: its URL. It goes with
    /// the others.
    pub async fn extra(&mut self, name: &str) -> Result<String, sea_orm::DbErr> {
        if let Some(directory) = &self.directory {
            return Ok(format!("sqlite://{}/{name}.db", directory.display()));
        }
        let admin = self.admin.clone().unwrap_or_default();
        let database = format!("{}_{name}", self.run);
        let connection = sea_orm::Database::connect(admin.as_str()).await?;
        create(&connection, &database, self.isolation).await?;
        self.names.push(database.clone());
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        Ok(format!("{base}/{database}"))
    }

    /// Drops the databases or removes the files.
    pub async fn drop_all(self) {
        if let Some(admin) = &self.admin
            && let Ok(connection) = sea_orm::Database::connect(admin.as_str()).await
        {
            for name in &self.names {
                let _ =
                    connection.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
            }
        }
        if let Some(directory) = &self.directory {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

/// Creates the database `name`, running at `isolation` by default when one is given.
async fn create(
    connection: &sea_orm::DatabaseConnection,
    name: &str,
    isolation: Option<&str>,
) -> Result<(), sea_orm::DbErr> {
    connection.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    if let Some(level) = isolation {
        let set = format!("ALTER DATABASE \"{name}\" SET default_transaction_isolation = '{level}'");
        connection.execute_unprepared(&set).await?;
    }
    Ok(())
}

/// A service process.
#[derive(Debug)]
pub struct Process {
    child: Child,
    /// Its gRPC URL.
    pub url: String,
    /// Where its Prometheus endpoint listens.
    metrics: Option<String>,
}

impl Process {
    /// Starts `binary` with `env` on a free port and waits until it says it serves.
    pub async fn start(binary: &Path, prefix: &str, env: &[(String, String)]) -> std::io::Result<Self> {
        let mut command = Command::new(binary);
        command
            .env("LOG_FORMAT", "json")
            .env(format!("{prefix}_LISTEN_ADDR"), "127.0.0.1:0")
            .env(format!("{prefix}_METRICS_ADDR"), "127.0.0.1:0")
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let (address, metrics) = loop {
            let Some(line) = lines.next_line().await? else {
                return Err(std::io::Error::other(format!("{} stopped before serving", binary.display())));
            };
            if line.contains(" serving\"")
                && let Some(address) = field(&line, "address")
            {
                break (address, field(&line, "metrics_address"));
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self { child, url: format!("http://{address}"), metrics })
    }

    /// Its process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The writes it tried again after losing a race, from its `db_transaction_retries_total`.
    pub async fn retries(&self) -> Option<f64> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics.as_deref()?).await.ok()?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: loadgen\r\n\r\n").await.ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).await.ok()?;
        Some(sum_of(&text, "db_transaction_retries_total"))
    }

    /// The most memory the process has held, in MiB (Linux: VmHWM).
    pub fn peak_memory_mib(&self) -> Option<f64> {
        let pid = self.child.id()?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
        let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib / 1024.0)
    }

    /// Stops it.
    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

/// The sum of every series of the metric `name` in a Prometheus text page.
fn sum_of(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The value of a string field in a JSON log line.
fn field(line: &str, name: &str) -> Option<String> {
    let marker = format!("\"{name}\":\"");
    let start = line.find(&marker)? + marker.len();
    let end = start + line[start..].find('"')?;
    Some(line[start..end].to_owned())
}

/// The directory of this executable, where `cargo build --release --bins` put the services too.
pub fn binaries() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    exe.parent().map(Path::to_path_buf).ok_or_else(|| std::io::Error::other("no parent directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_metric_is_summed_over_its_series() {
        let page = "# TYPE db_transaction_retries_total counter\n\
                    db_transaction_retries_total{live_mode=\"true\"} 3\n\
                    db_transaction_retries_total{live_mode=\"false\"} 1\n\
                    db_transaction_retries_totally 100\n";
        assert_eq!(sum_of(page, "db_transaction_retries_total"), 4.0);
        assert_eq!(sum_of(page, "rpc_server_requests_total"), 0.0);
    }

    #[test]
    fn the_address_is_read_from_the_serving_line() {
        let line =
            r#"{"level":"INFO","address":"127.0.0.1:4711","metrics_address":"off","message":"inventory serving"}"#;
        assert_eq!(field(line, "address").as_deref(), Some("127.0.0.1:4711"));
        assert_eq!(field(line, "port"), None);
    }
}
