# dc1's servers (three of them): the whole configuration but each one's
# name and addresses, which the command line gives (see docker-compose.yml).
datacenter       = "dc1"
data_dir         = "/data"
server           = true
bootstrap_expect = 3
bind_addr        = "0.0.0.0"
client_addr      = "0.0.0.0"
retry_join       = ["dc1-server-1", "dc1-server-2", "dc1-server-3"]
retry_join_wan   = ["dc2-server-1", "dc2-server-2", "dc2-server-3"]
retry_interval     = "2s"
retry_interval_wan = "2s"
ui_config {
  enabled = true
}
