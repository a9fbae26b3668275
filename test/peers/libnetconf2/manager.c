/*
 * A NETCONF manager built on libnetconf2's client API: logs in over SSH with a password,
 * sends --count <get-config> (or <get>) requests one after the other, optionally pausing
 * between them, and prints one JSON line: {"ok":true,"sessionId":N,"replies":N,"bytes":N}
 * where bytes is the size of the last reply's data as libyang prints it.
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libyang/libyang.h>
#include <nc_client.h>

static const char *password;

static char *
password_clb(const char *username, const char *hostname, void *priv)
{
    (void)username; (void)hostname; (void)priv;
    return strdup(password);
}

/* The gateway's host key is not what is under test here. */
static int
hostkey_clb(const char *hostname, ssh_session session, void *priv)
{
    (void)hostname; (void)session; (void)priv;
    return 0;
}

static int
fail(const char *what)
{
    printf("{\"ok\":false,\"error\":\"%s\"}\n", what);
    return 1;
}

int
main(int argc, char **argv)
{
    static struct option longopts[] = {
        {"host", 1, 0, 'h'}, {"port", 1, 0, 'p'}, {"user", 1, 0, 'u'}, {"password", 1, 0, 'w'},
        {"count", 1, 0, 'n'}, {"pause-ms", 1, 0, 's'}, {"get", 0, 0, 'g'}, {"yang-dirs", 1, 0, 'y'}, {0, 0, 0, 0}
    };
    const char *host = "127.0.0.1", *user = NULL, *yang_dirs = NULL;
    int c, port = 0, count = 1, pause_ms = 0, use_get = 0;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'u': user = optarg; break;
        case 'w': password = optarg; break;
        case 'n': count = atoi(optarg); break;
        case 's': pause_ms = atoi(optarg); break;
        case 'g': use_get = 1; break;
        case 'y': yang_dirs = optarg; break;
        default:
            fprintf(stderr, "usage: lnc2-manager --port P --user U --password PW --yang-dirs DIR:DIR [--host H] [--count N] [--pause-ms MS] [--get]\n");
            return 2;
        }
    }
    if (!port || !user || !password || !yang_dirs) {
        return fail("usage");
    }
    nc_verbosity(NC_VERB_WARNING);
    nc_client_init();
    nc_client_set_schema_searchpath(yang_dirs);
    nc_client_ssh_set_username(user);
    nc_client_ssh_set_auth_password_clb(password_clb, NULL);
    nc_client_ssh_set_auth_hostkey_check_clb(hostkey_clb, NULL);
    nc_client_ssh_set_auth_pref(NC_SSH_AUTH_PUBLICKEY, -1);
    nc_client_ssh_set_auth_pref(NC_SSH_AUTH_INTERACTIVE, -1);

    struct nc_session *session = nc_connect_ssh(host, port, NULL);
    if (!session) {
        return fail("connect");
    }
    size_t bytes = 0;
    int replies = 0;
    for (int i = 0; i < count; i++) {
        struct nc_rpc *rpc = use_get ? nc_rpc_get(NULL, NC_WD_UNKNOWN, NC_PARAMTYPE_CONST) :
                nc_rpc_getconfig(NC_DATASTORE_RUNNING, NULL, NC_WD_UNKNOWN, NC_PARAMTYPE_CONST);
        uint64_t msgid;
        struct lyd_node *envp = NULL, *op = NULL;
        if (nc_send_rpc(session, rpc, 10000, &msgid) != NC_MSG_RPC) {
            return fail("send");
        }
        if (nc_recv_reply(session, rpc, msgid, 60000, &envp, &op) != NC_MSG_REPLY || !op) {
            return fail("reply");
        }
        char *text = NULL;
        struct lyd_node *data = lyd_child(op);
        if (data) {
            /* the reply's <data> is anydata: print what it carries */
            lyd_print_mem(&text, op, LYD_XML, LYD_PRINT_WITHSIBLINGS);
        }
        bytes = text ? strlen(text) : 0;
        free(text);
        lyd_free_all(envp);
        lyd_free_all(op);
        nc_rpc_free(rpc);
        replies++;
        if (pause_ms && i + 1 < count) {
            usleep(pause_ms * 1000);
        }
    }
    printf("{\"ok\":true,\"sessionId\":%u,\"replies\":%d,\"bytes\":%zu}\n", nc_session_get_id(session), replies, bytes);
    fflush(stdout);
    nc_session_free(session, NULL);
    nc_client_destroy();
    return 0;
}
