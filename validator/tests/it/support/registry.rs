//! A real registry (Debian's docker-registry) on a free loopback port, with
//! TLS from a fresh self-signed certificate and basic authentication, for
//! the tests that read images from `docker://`. Stopped when dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;

pub const USER: &str = "producer";
pub const PASSWORD: &str = "s3cret-for-tests";

pub struct Registry {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// Holds `ca.crt` (the certificate, as skopeo's --cert-dir wants it).
    pub cert_dir: PathBuf,
    /// A containers-auth.json with the test user's credentials.
    pub authfile: PathBuf,
}

impl Registry {
    /// Starts a registry whose files live under `dir`.
    pub fn start(dir: &Path) -> Registry {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let host = format!("127.0.0.1:{port}");
        let cert_dir = dir.join("certs");
        fs::create_dir_all(&cert_dir).unwrap();
        let (cert, key) = (cert_dir.join("ca.crt"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl is required (.ci/run installs it)");
        assert!(made.status.success(), "openssl: {}", String::from_utf8_lossy(&made.stderr));
        // The registry accepts only bcrypt password hashes.
        let hashed = Command::new("/usr/bin/python3")
            .args([
                "-W",
                "ignore",
                "-c",
                "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH)))",
            ])
            .arg(PASSWORD)
            .output()
            .expect("python3 is required (.ci/run installs it)");
        assert!(hashed.status.success(), "bcrypt: {}", String::from_utf8_lossy(&hashed.stderr));
        let htpasswd = dir.join("htpasswd");
        fs::write(&htpasswd, format!("{USER}:{}", String::from_utf8_lossy(&hashed.stdout).trim())).unwrap();
        let config = dir.join("config.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {data}\nhttp:\n  addr: {host}\n  tls:\n    certificate: {cert}\n    key: {key}\nauth:\n  htpasswd:\n    realm: tests\n    path: {htpasswd}\n",
                data = dir.join("data").display(),
                cert = cert.display(),
                key = key.display(),
                htpasswd = htpasswd.display(),
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(fs::File::create(dir.join("log")).unwrap())
            .spawn()
            .expect("docker-registry is required (.ci/run installs it)");
        let authfile = dir.join("auth.json");
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        fs::write(&authfile, format!(r#"{{"auths":{{"{host}":{{"auth":"{token}"}}}}}}"#)).unwrap();
        let registry = Registry { child, host, cert_dir, authfile };
        let started = Instant::now();
        while std::net::TcpStream::connect(&registry.host).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the registry did not start: {}",
                fs::read_to_string(dir.join("log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Copies `from` (a skopeo reference) to `NAME:TAG` in this registry.
    pub fn push(&self, from: &str, name: &str, extra: &[&str]) -> String {
        let to = format!("docker://{}/{name}", self.host);
        let out = Command::new("skopeo")
            .args(["copy", "-q", "--dest-cert-dir"])
            .arg(&self.cert_dir)
            .arg("--dest-authfile")
            .arg(&self.authfile)
            .args(extra)
            .args([from, &to])
            .output()
            .expect("skopeo is required (.ci/run installs it)");
        assert!(out.status.success(), "skopeo copy {from} {to}: {}", String::from_utf8_lossy(&out.stderr));
        to
    }

    /// The options with which single-id reaches this registry.
    pub fn options(&self) -> Vec<String> {
        vec![
            "--cert-dir".into(),
            self.cert_dir.display().to_string(),
            "--authfile".into(),
            self.authfile.display().to_string(),
        ]
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
