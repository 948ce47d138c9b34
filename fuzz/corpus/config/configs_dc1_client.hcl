# A client agent of dc1: joins its datacenter's servers, serves the API
# and DNS for its machine, and registers the web service below.
datacenter     = "dc1"
data_dir       = "/data"
bind_addr      = "0.0.0.0"
client_addr    = "0.0.0.0"
retry_join     = ["dc1-server-1", "dc1-server-2", "dc1-server-3"]
retry_interval = "2s"

service {
  name = "web"
  port = 8080
  address = "10.213.1.15"
  tags = ["demo"]
  check {
    http     = "http://dc1-web:8080/health"
    interval = "2s"
    timeout  = "1s"
  }
}
