"""Serve a search page and a JSON API over a code file (hashnet/tasks/serve.py).

    python scripts/serve.py ckpt_path=.../last.ckpt index=.../codes_database.npz [port=8000] [host=0.0.0.0]
"""
import logging
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from hashnet.tasks.serve import check_settings, expose_command, load_app, start_server
from hashnet.utils.entry import run
from hashnet.utils.errors import exit_on_error

log = logging.getLogger("hashnet.tasks.serve")


@hydra.main(version_base="1.3", config_path="../configs", config_name="serve")
def main(cfg: DictConfig) -> None:
    with exit_on_error("serve"):  # a message, not a traceback (HASHNET_DEBUG=1 shows the chain)
        check_settings(cfg.port, cfg.max_upload_mb, cfg.k, cfg.max_decoding)  # before the model loads
        app = load_app(cfg.ckpt_path, cfg.index, cfg.backend, cfg.device, k=cfg.k, max_upload_mb=cfg.max_upload_mb,
                       max_decoding=cfg.max_decoding)
        server = start_server(app, cfg.host, cfg.port)
    log.info("Search page: http://%s:%d/  (API: /api/search, /api/info; Ctrl-C stops it)", cfg.host, server.port)
    if cfg.host in ("127.0.0.1", "localhost", "::1"):
        log.info("Only this machine can connect. To serve other machines too (anyone who reaches port %d can then "
                 "search and see the indexed images):\n  %s", server.port,
                 expose_command(sys.argv[0], HydraConfig.get().overrides.task))
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        server.server_close()


if __name__ == "__main__":
    run(main, "serve")  # Hydra's own errors (an unknown key, a bad override) as one line too
