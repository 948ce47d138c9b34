//! `meridian demo-web [-listen ADDR] [-name TEXT]`: the small web service
//! of the docker-compose demo (its images have nothing but this binary):
//! `GET /` says hello, `GET /health` answers 200 for health checks.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};

use anyhow::{Context, Result};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to listen.
    #[arg(long, default_value = "0.0.0.0:8080")]
    listen: String,
    /// What `GET /` answers with (default: the host name).
    #[arg(long)]
    name: Option<String>,
}

pub fn run(a: Args) -> Result<i32> {
    let name = a.name.unwrap_or_else(|| {
        hostname::get()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_else(|_| "meridian-demo".into())
    });
    let listener =
        TcpListener::bind(&a.listen).with_context(|| format!("cannot listen on {}", a.listen))?;
    eprintln!("demo web service listening on {}", a.listen);
    for conn in listener.incoming().flatten() {
        let name = name.clone();
        std::thread::spawn(move || serve(conn, &name));
    }
    Ok(0)
}

fn serve(conn: TcpStream, name: &str) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut reader = BufReader::new(&conn);
    let mut first = String::new();
    if reader.read_line(&mut first).is_err() {
        return;
    }
    // The rest of the head is read and ignored.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = first.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/health" => ("200 OK", "ok\n".to_string()),
        "/" => ("200 OK", format!("hello from {name}\n")),
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    let mut w = &conn;
    let _ = write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
