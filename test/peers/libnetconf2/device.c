/*
 * A call-home NETCONF device built on libnetconf2's server API (Debian libnetconf2-dev 2.0.x,
 * the library under Netopeer2): persistent call home over SSH to the gateway, sessions
 * served from one poll loop, further SSH channels accepted as new NETCONF sessions the
 * way Netopeer2 does. get and get-config answer a generated list of --items entries.
 *
 * One line per event on stderr for the tests: "EVENT connect N", "EVENT auth N METHOD ok|fail",
 * "EVENT session-start ID", "EVENT session-end ID", "EVENT ready".
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libyang/libyang.h>
#include <nc_server.h>

static struct {
    const char *host, *hostkey, *password, *authkey, *username, *yang_dirs, *ca, *cert, *key, *gw_cert, *gw_fingerprint;
    int port, items, auth_methods, kbd_empty_round, kbd_reprompt, drop_after_ms, tls;
} opt = {.host = "127.0.0.1", .items = 2000, .username = "admin"};

static struct ly_ctx *ctx;
static struct nc_pollsession *ps;
static volatile sig_atomic_t stop;
static int connections;
static struct nc_session *ch_session;
static struct timespec ch_started;

static void
event(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("EVENT ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    fflush(stderr);
}

static void
on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

/* Called once per accepted call-home SSH connection, before key exchange: counts attempts. */
static int
hostkey_clb(const char *name, void *user_data, char **privkey_path, char **privkey_data, NC_SSH_KEY_TYPE *privkey_type)
{
    (void)name; (void)user_data; (void)privkey_data; (void)privkey_type;
    event("connect %d", ++connections);
    *privkey_path = strdup(opt.hostkey);
    return 0;
}

static int
passwd_clb(const struct nc_session *session, const char *password, void *user_data)
{
    (void)user_data;
    int bad = strcmp(nc_session_get_username(session), opt.username) || strcmp(password, opt.password);
    event("auth %d password %s", connections, bad ? "fail" : "ok");
    return bad;
}

/*
 * Keyboard-interactive as vendor boxes do it: optionally a first round without prompts
 * (only an instruction), then one echo-off "Password:" prompt. With --kbd-reprompt a wrong
 * answer is met with the same prompt again instead of a failure, as some CLIs do.
 */
static int
interactive_clb(const struct nc_session *session, const ssh_message msg, void *user_data)
{
    (void)user_data;
    static const char *prompts[] = {"Password: "};
    static char echo[] = {0};
    static int round;
    /* libssh has no public accessor for a message's session; it is the struct's first member. */
    ssh_session ssh = *(ssh_session *)msg;

    if (!ssh_message_auth_kbdint_is_response(msg)) {
        round = 0;
        if (opt.kbd_empty_round) {
            ssh_message_auth_interactive_request(msg, "Device login", "Welcome: this device asks for a password next.", 0, NULL, NULL);
            event("auth %d keyboard-interactive empty-round", connections);
            return -1;
        }
        ssh_message_auth_interactive_request(msg, "Device login", "", 1, prompts, echo);
        return -1;
    }
    if (opt.kbd_empty_round && round == 0 && ssh_userauth_kbdint_getnanswers(ssh) == 0) {
        round = 1;
        ssh_message_auth_interactive_request(msg, "Device login", "", 1, prompts, echo);
        return -1;
    }
    int bad = ssh_userauth_kbdint_getnanswers(ssh) != 1 || strcmp(nc_session_get_username(session), opt.username) ||
            strcmp(ssh_userauth_kbdint_getanswer(ssh, 0), opt.password);
    event("auth %d keyboard-interactive %s", connections, bad ? "fail" : "ok");
    if (bad && opt.kbd_reprompt) {
        ssh_message_auth_interactive_request(msg, "Device login", "Wrong password, try again.", 1, prompts, echo);
        return -1;
    }
    return bad;
}

static int
pubkey_clb(const struct nc_session *session, ssh_key key, void *user_data)
{
    (void)user_data;
    ssh_key authorized = NULL;
    int bad = 1;
    if (opt.authkey && !ssh_pki_import_pubkey_file(opt.authkey, &authorized)) {
        bad = ssh_key_cmp(key, authorized, SSH_KEY_CMP_PUBLIC) || strcmp(nc_session_get_username(session), opt.username);
    }
    ssh_key_free(authorized);
    event("auth %d publickey %s", connections, bad ? "fail" : "ok");
    return bad;
}

static int
cert_clb(const char *name, void *user_data, char **cert_path, char **cert_data, char **privkey_path, char **privkey_data,
        NC_SSH_KEY_TYPE *privkey_type)
{
    (void)name; (void)user_data; (void)cert_data; (void)privkey_data; (void)privkey_type;
    event("connect %d", ++connections);
    *cert_path = strdup(opt.cert);
    *privkey_path = strdup(opt.key);
    return 0;
}

static int
trusted_clb(const char *name, void *user_data, char ***cert_paths, int *cert_path_count, char ***cert_data, int *cert_data_count)
{
    (void)name; (void)user_data; (void)cert_data; (void)cert_data_count;
    *cert_paths = malloc(sizeof **cert_paths);
    (*cert_paths)[0] = strdup(opt.gw_cert);
    *cert_path_count = 1;
    return 0;
}

/* get and get-config: the generated list (the filter is ignored). */
static struct nc_server_reply *
rpc_clb(struct lyd_node *rpc, struct nc_session *session)
{
    (void)session;
    const char *name = rpc->schema->name;
    if (strcmp(name, "get") && strcmp(name, "get-config")) {
        if (!strcmp(name, "lock") || !strcmp(name, "unlock") || !strcmp(name, "edit-config") ||
                !strcmp(name, "commit") || !strcmp(name, "discard-changes") || !strcmp(name, "validate")) {
            return nc_server_reply_ok();
        }
        return nc_server_reply_err(nc_err(ctx, NC_ERR_OP_NOT_SUPPORTED, NC_ERR_TYPE_PROT));
    }
    struct lyd_node *top = NULL, *item;
    char key[64], descr[128];
    if (lyd_new_inner(NULL, ly_ctx_get_module_implemented(ctx, "chgw-lnc2-device"), "inventory", 0, &top)) {
        return nc_server_reply_err(nc_err(ctx, NC_ERR_OP_FAILED, NC_ERR_TYPE_APP));
    }
    for (int i = 0; i < opt.items; i++) {
        snprintf(key, sizeof key, "item-%06d", i);
        snprintf(descr, sizeof descr, "line card %06d of the libnetconf2 test device, slot %d, port %d", i, i / 48, i % 48);
        if (lyd_new_list(top, NULL, "item", 0, &item, key) || lyd_new_term(item, NULL, "description", descr, 0, NULL)) {
            lyd_free_all(top);
            return nc_server_reply_err(nc_err(ctx, NC_ERR_OP_FAILED, NC_ERR_TYPE_APP));
        }
    }
    /* The reply is the RPC node with its output: <data> (anydata) holding the tree. */
    struct lyd_node *reply = NULL;
    if (lyd_dup_single(rpc, NULL, 0, &reply) || lyd_new_any(reply, NULL, "data", top, 1, LYD_ANYDATA_DATATREE, 1, NULL)) {
        lyd_free_all(top);
        lyd_free_all(reply);
        return nc_server_reply_err(nc_err(ctx, NC_ERR_OP_FAILED, NC_ERR_TYPE_APP));
    }
    return nc_server_reply_data(reply, NC_WD_EXPLICIT, NC_PARAMTYPE_FREE);
}

/* The call-home thread hands over each new connection's first NETCONF session. */
static int
ch_session_clb(const char *client_name, struct nc_session *session)
{
    (void)client_name;
    clock_gettime(CLOCK_MONOTONIC, &ch_started);
    ch_session = session;
    event("session-start %u", nc_session_get_id(session));
    return nc_ps_add_session(ps, session);
}

static long
ms_since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void
end_session(struct nc_session *session)
{
    event("session-end %u", nc_session_get_id(session));
    if (session == ch_session) {
        ch_session = NULL;
    }
    nc_ps_del_session(ps, session);
    nc_session_free(session, NULL);
}

static void
usage(void)
{
    fprintf(stderr,
            "usage: lnc2-device --port P --hostkey FILE [--host H] [--username U] [--password PW] [--authkey PUBFILE]\n"
            "                   [--auth publickey,password,keyboard-interactive] [--kbd-empty-round] [--kbd-reprompt]\n"
            "                   [--items N] [--drop-after-ms MS] --yang-dirs DIR\n"
            "       lnc2-device --tls --port P --cert CRT --key KEY --gateway-cert CRT --gateway-fingerprint 04:AB:.. [--ca CRT] --yang-dirs DIR\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    static struct option longopts[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"hostkey", 1, 0, 'k'}, {"username", 1, 0, 'u'},
        {"password", 1, 0, 'w'}, {"authkey", 1, 0, 'a'}, {"auth", 1, 0, 'm'}, {"kbd-empty-round", 0, 0, 'e'},
        {"kbd-reprompt", 0, 0, 'r'}, {"items", 1, 0, 'n'}, {"drop-after-ms", 1, 0, 'd'}, {"yang-dirs", 1, 0, 'y'},
        {"tls", 0, 0, 't'}, {"cert", 1, 0, 'c'}, {"key", 1, 0, 'K'}, {"gateway-cert", 1, 0, 'g'}, {"ca", 1, 0, 'C'},
        {"gateway-fingerprint", 1, 0, 'f'}, {"verbose", 0, 0, 'v'}, {0, 0, 0, 0}
    };
    int c, verbose = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'k': opt.hostkey = optarg; break;
        case 'u': opt.username = optarg; break;
        case 'w': opt.password = optarg; break;
        case 'a': opt.authkey = optarg; break;
        case 'm':
            opt.auth_methods = (strstr(optarg, "publickey") ? NC_SSH_AUTH_PUBLICKEY : 0) |
                    (strstr(optarg, "password") ? NC_SSH_AUTH_PASSWORD : 0) |
                    (strstr(optarg, "keyboard-interactive") ? NC_SSH_AUTH_INTERACTIVE : 0);
            break;
        case 'e': opt.kbd_empty_round = 1; break;
        case 'r': opt.kbd_reprompt = 1; break;
        case 'n': opt.items = atoi(optarg); break;
        case 'd': opt.drop_after_ms = atoi(optarg); break;
        case 'y': opt.yang_dirs = optarg; break;
        case 't': opt.tls = 1; break;
        case 'c': opt.cert = optarg; break;
        case 'K': opt.key = optarg; break;
        case 'g': opt.gw_cert = optarg; break;
        case 'C': opt.ca = optarg; break;
        case 'f': opt.gw_fingerprint = optarg; break;
        case 'v': verbose = 1; break;
        default: usage();
        }
    }
    if (!opt.port || !opt.yang_dirs || (opt.tls ? !opt.cert || !opt.key || !opt.gw_cert || !opt.gw_fingerprint : !opt.hostkey)) {
        usage();
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    nc_verbosity(verbose ? NC_VERB_VERBOSE : NC_VERB_WARNING);

    const char *features[] = {"*", NULL};
    if (ly_ctx_new(opt.yang_dirs, 0, &ctx) || !ly_ctx_load_module(ctx, "ietf-netconf", NULL, features) ||
            !ly_ctx_load_module(ctx, "chgw-lnc2-device", NULL, NULL)) {
        fprintf(stderr, "lnc2-device: cannot load ietf-netconf and chgw-lnc2-device from %s\n", opt.yang_dirs);
        return 1;
    }
    if (nc_server_init(ctx)) {
        return 1;
    }
    nc_set_global_rpc_clb(rpc_clb);
    ps = nc_ps_new();

    const char *client = "gateway", *endpt = "gateway-endpt";
    if (nc_server_ch_add_client(client) ||
            nc_server_ch_client_add_endpt(client, endpt, opt.tls ? NC_TI_OPENSSL : NC_TI_LIBSSH) ||
            nc_server_ch_client_endpt_set_address(client, endpt, opt.host) ||
            nc_server_ch_client_endpt_set_port(client, endpt, opt.port) ||
            nc_server_ch_client_set_conn_type(client, NC_CH_PERSIST)) {
        fprintf(stderr, "lnc2-device: call-home client set-up failed\n");
        return 1;
    }
    if (opt.tls) {
        nc_server_tls_set_server_cert_clb(cert_clb, NULL, NULL);
        nc_server_tls_set_trusted_cert_list_clb(trusted_clb, NULL, NULL);
        if (nc_server_tls_ch_client_endpt_set_server_cert(client, endpt, "device-cert") ||
                nc_server_tls_ch_client_endpt_add_trusted_cert_list(client, endpt, "gateway") ||
                (opt.ca && nc_server_tls_ch_client_endpt_set_trusted_ca_paths(client, endpt, opt.ca, NULL)) ||
                /* cert-to-name (RFC 7589 §7): the gateway's certificate maps to the NETCONF user "admin" */
                nc_server_tls_ch_client_endpt_add_ctn(client, endpt, 1, opt.gw_fingerprint, NC_TLS_CTN_SPECIFIED, opt.username)) {
            fprintf(stderr, "lnc2-device: TLS set-up failed\n");
            return 1;
        }
    } else {
        nc_server_ssh_set_hostkey_clb(hostkey_clb, NULL, NULL);
        nc_server_ssh_set_passwd_auth_clb(passwd_clb, NULL, NULL);
        nc_server_ssh_set_interactive_auth_clb(interactive_clb, NULL, NULL);
        nc_server_ssh_set_pubkey_auth_clb(pubkey_clb, NULL, NULL);
        if (nc_server_ssh_ch_client_endpt_add_hostkey(client, endpt, "device-key", -1) ||
                (opt.auth_methods && nc_server_ssh_ch_client_endpt_set_auth_methods(client, endpt, opt.auth_methods)) ||
                nc_server_ssh_ch_client_endpt_set_auth_attempts(client, endpt, 10)) {
            fprintf(stderr, "lnc2-device: SSH set-up failed\n");
            return 1;
        }
    }
    if (nc_connect_ch_client_dispatch(client, ch_session_clb)) {
        return 1;
    }
    event("ready");

    while (!stop) {
        struct nc_session *session = NULL;
        int r = nc_ps_poll(ps, 100, &session);
        if (r & NC_PSPOLL_SSH_CHANNEL) {
            /* A further channel on a running connection: a new NETCONF session, as in Netopeer2. */
            struct nc_session *added = NULL;
            if (nc_ps_accept_ssh_channel(ps, &added) == NC_MSG_HELLO) {
                event("session-start %u", nc_session_get_id(added));
                nc_ps_add_session(ps, added);
            }
        }
        if ((r & NC_PSPOLL_SESSION_TERM) && session) {
            end_session(session);
        }
        if (opt.drop_after_ms && ch_session && ms_since(&ch_started) > opt.drop_after_ms) {
            /* A flapping device: its first session (and with it the connection) ends soon after login. */
            nc_session_set_status(ch_session, NC_STATUS_INVALID);
            end_session(ch_session);
        }
    }
    while (nc_ps_session_count(ps)) {
        end_session(nc_ps_get_session(ps, 0));
    }
    nc_server_ch_del_client(NULL);
    nc_ps_free(ps);
    nc_server_destroy();
    ly_ctx_destroy(ctx);
    return 0;
}
