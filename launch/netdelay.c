// launch/netdelay.c: holds every packet sent to an NFQUEUE for a fixed time, then lets it go on, in
// order: launch/cluster's `shape --delay` on kernels without the netem qdisc.
//   netdelay QUEUE DELAY_MS
// launch/cluster builds it (cc -O2 launch/netdelay.c -lnetfilter_queue), starts it inside a host's
// namespace and sends that host's outgoing packets to the queue with iptables' NFQUEUE target
// (--queue-bypass, so packets pass untouched if this program is gone). Each packet is read as its
// metadata only; once its time is up a batch verdict accepts it with every packet queued before it,
// so the delay is constant and the order kept. Stops on SIGTERM (the cluster's teardown).
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define CAPACITY (1u << 20)

typedef struct { uint32_t id; int64_t due; } Held;

static Held *held;            // [CAPACITY] a ring of packets in arrival order
static size_t head, count;    // the oldest held packet, and how many are held
static int64_t delay_ns;
static volatile sig_atomic_t stopping;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static int on_packet(struct nfq_q_handle *queue, struct nfgenmsg *message, struct nfq_data *data, void *context) {
    (void)message; (void)context;
    struct nfqnl_msg_packet_hdr *header = nfq_get_msg_packet_hdr(data);
    if (header == NULL) return 0;
    uint32_t id = ntohl(header->packet_id);
    if (count == CAPACITY) return nfq_set_verdict(queue, id, NF_ACCEPT, 0, NULL);
    held[(head + count) % CAPACITY] = (Held){ id, now_ns() + delay_ns };
    count += 1;
    return 0;
}

static void on_signal(int signal) { (void)signal; stopping = 1; }

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: netdelay QUEUE DELAY_MS\n"); return 2; }
    int number = atoi(argv[1]);
    double milliseconds = atof(argv[2]);
    if (number < 0 || milliseconds < 0) { fprintf(stderr, "netdelay: QUEUE and DELAY_MS must be ≥ 0\n"); return 2; }
    delay_ns = (int64_t)(milliseconds * 1e6);
    held = malloc(sizeof(Held) * CAPACITY);
    struct nfq_handle *handle = nfq_open();
    if (held == NULL || handle == NULL) { perror("netdelay: nfq_open"); return 1; }
    nfq_unbind_pf(handle, AF_INET);
    if (nfq_bind_pf(handle, AF_INET) < 0) { perror("netdelay: nfq_bind_pf"); return 1; }
    struct nfq_q_handle *queue = nfq_create_queue(handle, (uint16_t)number, on_packet, NULL);
    if (queue == NULL) { fprintf(stderr, "netdelay: cannot bind queue %d (is another listener on it?)\n", number); return 1; }
    if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0) { perror("netdelay: nfq_set_mode"); return 1; }
    nfq_set_queue_maxlen(queue, CAPACITY);
    nfq_set_queue_flags(queue, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO);
    int fd = nfq_fd(handle);
    nfnl_rcvbufsiz(nfq_nfnlh(handle), 64u << 20);
    int on = 1;
    setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);

    static char buffer[1 << 16];
    while (!stopping) {
        struct timespec wait = { 1, 0 };
        if (count > 0) {
            int64_t left = held[head].due - now_ns();
            if (left < 0) left = 0;
            wait = (struct timespec){ (time_t)(left / 1000000000), (long)(left % 1000000000) };
        }
        struct pollfd ready = { fd, POLLIN, 0 };
        int polled = ppoll(&ready, 1, &wait, NULL);
        if (polled < 0 && errno != EINTR) { perror("netdelay: ppoll"); return 1; }
        if (polled > 0) {
            for (;;) {
                ssize_t received = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
                if (received < 0) break;
                nfq_handle_packet(handle, buffer, (int)received);
            }
        }
        int64_t now = now_ns();
        uint32_t last = 0;
        int due = 0;
        while (count > 0 && held[head].due <= now) {
            last = held[head].id;
            due = 1;
            head = (head + 1) % CAPACITY;
            count -= 1;
        }
        if (due) nfq_set_verdict_batch(queue, last, NF_ACCEPT);
    }
    nfq_destroy_queue(queue);
    nfq_close(handle);
    return 0;
}
