// SPDX-License-Identifier: GPL-2.0
/*
 * IPsec packet offload emulation.
 *
 * Does what a packet offload NIC does, in software, so that the stack's
 * packet offload paths can be tested without the hardware:
 *
 * TX: a plain packet that matches an offloaded out policy is encapsulated
 * with the policy's state (tunnel: new outer header; transport: ESP after
 * the IP header), encrypted with rfc4106(gcm(aes)), given the state's next
 * sequence number (the device owns it, ESN included).  In tunnel mode the
 * Ethernet header is addressed to the next hop towards the SA peer, never
 * to what the stack put on the skb.  As on mlx5, that address is a
 * snapshot taken when the state is added (route and neighbour towards the
 * peer), which only netevents for the state's own addresses update: a new
 * route, or a new MAC address of a router in front of the peer, is not
 * followed.  In transport mode the stack's L2 bytes stay, as mlx5's
 * ADD_ESP_TRANSPORT reformat keeps them.
 *
 * RX: ESP for an offloaded inbound state is decrypted and verified,
 * checked against the replay window, decapsulated and handed to the stack
 * with the secpath a packet offload driver sets.
 *
 * All offload state of a port is protected by one spinlock, taken in the
 * datapath with BH disabled; crypto is synchronous, so nothing sleeps
 * under it.  Nothing is transmitted with the lock held, since a neighbour
 * solicitation goes out through this same port.
 *
 * Two debugfs switches per port make the emulation fail on purpose, so
 * that tests can show they notice: ipsec_packet_fail_tx drops every packet
 * of an out SA, ipsec_packet_fail_encrypt sends its payload in the clear.
 * A third, ipsec_packet_follow_next_hop, makes it kinder than mlx5: the
 * snapshot also follows the neighbour it was taken from.
 */

#include <crypto/aead.h>
#include <linux/etherdevice.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/scatterlist.h>
#include <linux/seq_file.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/dst.h>
#include <net/esp.h>
#include <net/ip.h>
#include <net/arp.h>
#include <net/ip6_route.h>
#include <net/ipv6.h>
#include <net/neighbour.h>
#include <net/netevent.h>
#include <net/route.h>
#include <net/xfrm.h>

#include "netdevsim.h"

#define NSIM_PKT_ALG		"rfc4106(gcm(aes))"
#define NSIM_PKT_ICV_LEN	16
#define NSIM_PKT_IV_LEN		8
#define NSIM_PKT_SALT_LEN	4
#define NSIM_PKT_REPLAY_MAX	1024
#define NSIM_PKT_ESP_LEN	(sizeof(struct ip_esp_hdr) + NSIM_PKT_IV_LEN)

struct nsim_pkt_sa {
	struct list_head list;
	struct netdevsim *ns;
	struct xfrm_state *xs;
	struct crypto_aead *tfm;
	struct aead_request *req;	/* used under ipsec->lock only */
	/* the AEAD's associated data: the scatterlist needs it off the stack */
	__be32 aad[3];			/* used under ipsec->lock only */
	bool in;
	bool esn;
	bool tunnel;
	/* out: last sequence number sent; in: highest one accepted */
	u64 seq;
	u32 window;
	unsigned long bitmap[BITS_TO_LONGS(NSIM_PKT_REPLAY_MAX)];
	u64 packets;
	u64 bytes;
	u64 drop_icv;
	u64 drop_replay;
	/* lifetime limits crossed: 1 soft, 2 hard */
	u8 lft_level;
	/* tunnel mode, as mlx5 keeps them: the next hop's MAC address (out),
	 * the key of the neighbour it came from, and whether the state drops
	 * everything until a netevent brings a neighbour of its own
	 */
	u8 next_hop_ha[ETH_ALEN];
	xfrm_address_t next_hop_key;
	bool no_neigh;
	/* what update_stats already gave to the xfrm state */
	u64 reported_packets;
	u64 reported_bytes;
	u64 reported_icv;
	u64 reported_replay;
};

struct nsim_pkt_pol {
	struct list_head list;
	struct xfrm_policy *xp;
};

static struct nsim_pkt_sa *nsim_pkt_sa(struct xfrm_state *xs)
{
	return (struct nsim_pkt_sa *)READ_ONCE(xs->xso.offload_handle);
}

static bool nsim_pkt_sel_proto_ok(u8 proto)
{
	return proto == IPPROTO_IP || proto == IPPROTO_TCP ||
	       proto == IPPROTO_UDP;
}

/* What mlx5 refuses at add time beyond the algorithm and the mode
 * (mlx5e_xfrm_validate_state(); the core refuses TFC padding itself):
 * the device classifies on TCP and UDP ports only, keeps the replay
 * bitmap in one of four sizes, links policies to states by reqid and
 * counts lifetimes in hardware.
 */
static int nsim_pkt_check_state_mlx5(struct xfrm_state *xs,
				     struct netlink_ext_ack *extack)
{
	const struct xfrm_lifetime_cfg *lft = &xs->lft;

	if (!nsim_pkt_sel_proto_ok(xs->sel.proto)) {
		NSIM_EA(extack, "Device does not support upper protocol other than TCP/UDP");
		return -EINVAL;
	}
	if (xs->replay_esn && xs->xso.dir == XFRM_DEV_OFFLOAD_IN &&
	    xs->replay_esn->replay_window != 32 &&
	    xs->replay_esn->replay_window != 64 &&
	    xs->replay_esn->replay_window != 128 &&
	    xs->replay_esn->replay_window != 256) {
		NSIM_EA(extack, "Unsupported replay window size");
		return -EINVAL;
	}
	if (!xs->props.reqid) {
		NSIM_EA(extack, "Cannot offload without reqid");
		return -EINVAL;
	}
	if (lft->soft_byte_limit >= lft->hard_byte_limit &&
	    lft->hard_byte_limit != XFRM_INF) {
		NSIM_EA(extack, "Hard byte limit must be greater than soft one");
		return -EINVAL;
	}
	if (!lft->soft_byte_limit || !lft->hard_byte_limit) {
		NSIM_EA(extack, "Soft/hard byte limits can't be 0");
		return -EINVAL;
	}
	if (lft->soft_packet_limit >= lft->hard_packet_limit &&
	    lft->hard_packet_limit != XFRM_INF) {
		NSIM_EA(extack, "Hard packet limit must be greater than soft one");
		return -EINVAL;
	}
	if (!lft->soft_packet_limit || !lft->hard_packet_limit) {
		NSIM_EA(extack, "Soft/hard packet limits can't be 0");
		return -EINVAL;
	}
	return 0;
}

/* The checks and messages of mlx5e_xfrm_validate_state(), in its order,
 * for a device without NAT-T (MLX5_IPSEC_CAP_ESPINUDP).
 */
static int nsim_pkt_check_state(struct xfrm_state *xs,
				struct netlink_ext_ack *extack)
{
	unsigned int key_bits;
	int err;

	if (xs->props.aalgo != SADB_AALG_NONE) {
		NSIM_EA(extack, "Cannot offload authenticated xfrm states");
		return -EINVAL;
	}
	if (xs->props.ealgo != SADB_X_EALG_AES_GCM_ICV16) {
		NSIM_EA(extack, "Only AES-GCM-ICV16 xfrm state may be offloaded");
		return -EINVAL;
	}
	if (xs->props.calgo != SADB_X_CALG_NONE) {
		NSIM_EA(extack, "Cannot offload compressed xfrm states");
		return -EINVAL;
	}
	if (xs->props.family != AF_INET && xs->props.family != AF_INET6) {
		NSIM_EA(extack, "Only IPv4/6 xfrm states may be offloaded");
		return -EINVAL;
	}
	if (xs->id.proto != IPPROTO_ESP) {
		NSIM_EA(extack, "Only ESP xfrm state may be offloaded");
		return -EINVAL;
	}
	if (xs->encap) {
		NSIM_EA(extack, "Encapsulation is not supported");
		return -EINVAL;
	}
	/* rfc4106(gcm(aes)) is what AES-GCM-ICV16 names in the kernel. */
	if (!xs->aead || strcmp(xs->aead->alg_name, NSIM_PKT_ALG)) {
		NSIM_EA(extack, "Cannot offload xfrm states without aead");
		return -EINVAL;
	}
	if (xs->aead->alg_icv_len != NSIM_PKT_ICV_LEN * 8) {
		NSIM_EA(extack,
			"Cannot offload xfrm states with AEAD ICV length other than 128bit");
		return -EINVAL;
	}
	key_bits = xs->aead->alg_key_len;
	if (key_bits != 128 + 32 && key_bits != 256 + 32) {
		NSIM_EA(extack,
			"Cannot offload xfrm states with AEAD key length other than 128/256 bit");
		return -EINVAL;
	}
	if (xs->props.mode != XFRM_MODE_TUNNEL &&
	    xs->props.mode != XFRM_MODE_TRANSPORT) {
		NSIM_EA(extack, "Only transport and tunnel xfrm states may be offloaded");
		return -EINVAL;
	}
	if (xs->props.mode == XFRM_MODE_TRANSPORT &&
	    xs->sel.family != AF_UNSPEC && xs->sel.family != xs->props.family) {
		NSIM_EA(extack, "Transport mode needs the same family inside and out");
		return -EINVAL;
	}
	err = nsim_pkt_check_state_mlx5(xs, extack);
	if (err)
		return err;
	/* The emulation's own limit, which mlx5's sizes are all within. */
	if (xs->xso.dir == XFRM_DEV_OFFLOAD_IN &&
	    (xs->replay_esn ? xs->replay_esn->replay_window :
			      xs->props.replay_window) > NSIM_PKT_REPLAY_MAX) {
		NSIM_EA(extack, "Replay window too large for packet offload (max 1024)");
		return -EINVAL;
	}
	return 0;
}

/* What mlx5 does when it adds a tunnel mode state: a snapshot of the MAC
 * address of the next hop towards the peer, from a FIB lookup, or from
 * the peer's neighbour entry when there is no unicast route to it.  Out
 * states solicit an unresolved next hop and send to a zero address until
 * a netevent brings it; a state without route or neighbour drops
 * everything until then.  Returns a neighbour to solicit, with a
 * reference, once the state is on the list.
 */
static struct neighbour *nsim_pkt_init_next_hop(struct net_device *dev,
						struct nsim_pkt_sa *sa)
{
	struct xfrm_state *xs = sa->xs;
	const xfrm_address_t *peer = sa->in ? &xs->props.saddr : &xs->id.daddr;
	const xfrm_address_t *local = sa->in ? &xs->id.daddr : &xs->props.saddr;
	struct net *net = dev_net(dev);
	struct dst_entry *dst;
	struct neighbour *n;

	sa->next_hop_key = *peer;
	if (xs->props.family == AF_INET) {
		struct flowi4 fl4 = {
			.daddr = peer->a4,
			.saddr = local->a4,
			.flowi4_proto = xs->sel.proto,
		};
		struct rtable *rt = ip_route_output_key(net, &fl4);

		if (IS_ERR(rt))
			goto no_route;
		if (rt->rt_type != RTN_UNICAST) {
			ip_rt_put(rt);
			goto no_route;
		}
		dst = &rt->dst;
	} else {
		struct flowi6 fl6 = {
			.daddr = peer->in6,
			.saddr = local->in6,
			.flowi6_proto = xs->sel.proto,
		};

		dst = ip6_route_output(net, NULL, &fl6);
		if (dst->error) {
			dst_release(dst);
			goto no_route;
		}
	}

	n = dst_neigh_lookup(dst, peer);
	dst_release(dst);
	if (!n)
		goto no_route;
	memcpy(&sa->next_hop_key, n->primary_key, n->tbl->key_len);
	neigh_ha_snapshot(sa->next_hop_ha, n, dev);
	if (!sa->in && is_zero_ether_addr(sa->next_hop_ha))
		return n;
	neigh_release(n);
	return NULL;

no_route:
	/* mlx5 falls back to the ARP table for both families: for IPv6 it
	 * looks up, and solicits, the first four bytes of the peer's address,
	 * which nobody answers.  The state drops until a netevent for one of
	 * its own addresses.
	 */
	n = neigh_lookup(&arp_tbl, peer, dev);
	if (n) {
		neigh_ha_snapshot(sa->next_hop_ha, n, dev);
		neigh_release(n);
		return NULL;
	}
	sa->no_neigh = true;
	n = neigh_create(&arp_tbl, peer, dev);
	return IS_ERR(n) ? NULL : n;
}

/* mlx5's netevent handler: a neighbour keyed by one of a tunnel state's
 * addresses, once valid, gives the state its next hop and lifts its drop.
 * With ipsec_packet_follow_next_hop, the neighbour the snapshot came from
 * (a router's) does too.  Network namespaces stand for the hosts here, so
 * another namespace's neighbours are not this port's.
 */
int nsim_pkt_netevent(struct notifier_block *nb, unsigned long event,
		      void *ptr)
{
	struct nsim_ipsec *ipsec = container_of(nb, struct nsim_ipsec,
						pkt_netevent_nb);
	struct netdevsim *ns = container_of(ipsec, struct netdevsim, ipsec);
	struct neighbour *n = ptr;
	struct nsim_pkt_sa *sa;
	bool follow;

	if (event != NETEVENT_NEIGH_UPDATE ||
	    !(READ_ONCE(n->nud_state) & NUD_VALID) ||
	    !net_eq(dev_net(n->dev), dev_net(ns->netdev)))
		return NOTIFY_DONE;

	follow = READ_ONCE(ipsec->pkt_follow_next_hop);
	spin_lock_bh(&ipsec->lock);
	list_for_each_entry(sa, &ipsec->pkt_sas, list) {
		struct xfrm_state *xs = sa->xs;

		if (!sa->tunnel || n->tbl->family != xs->props.family)
			continue;
		if (memcmp(n->primary_key, &xs->props.saddr, n->tbl->key_len) &&
		    memcmp(n->primary_key, &xs->id.daddr, n->tbl->key_len) &&
		    (!follow || memcmp(n->primary_key, &sa->next_hop_key,
				       n->tbl->key_len)))
			continue;
		neigh_ha_snapshot(sa->next_hop_ha, n, ns->netdev);
		sa->no_neigh = false;
	}
	spin_unlock_bh(&ipsec->lock);
	return NOTIFY_DONE;
}

int nsim_pkt_state_add(struct net_device *dev, struct xfrm_state *xs,
		       struct netlink_ext_ack *extack)
{
	struct netdevsim *ns = netdev_priv(dev);
	struct nsim_ipsec *ipsec = &ns->ipsec;
	struct neighbour *solicit = NULL;
	struct nsim_pkt_sa *sa;
	int err;

	/* The placeholder an acquire makes for an offloaded policy (atomic
	 * context, no key yet): accepted and left off the device, as mlx5
	 * does, so that the key manager gets its acquire.
	 */
	if (xs->xso.flags & XFRM_DEV_OFFLOAD_FLAG_ACQ)
		return 0;

	err = nsim_pkt_check_state(xs, extack);
	if (err)
		return err;

	sa = kzalloc_obj(*sa);
	if (!sa)
		return -ENOMEM;

	/* Synchronous implementations only: the datapath runs under a
	 * spinlock.
	 */
	sa->tfm = crypto_alloc_aead(NSIM_PKT_ALG, 0, CRYPTO_ALG_ASYNC);
	if (IS_ERR(sa->tfm)) {
		err = PTR_ERR(sa->tfm);
		NSIM_EA(extack, "Cannot allocate " NSIM_PKT_ALG);
		goto err_free_sa;
	}
	err = crypto_aead_setkey(sa->tfm, xs->aead->alg_key,
				 xs->aead->alg_key_len / 8);
	if (!err)
		err = crypto_aead_setauthsize(sa->tfm, NSIM_PKT_ICV_LEN);
	if (err) {
		NSIM_EA(extack, "Key rejected by " NSIM_PKT_ALG);
		goto err_free_tfm;
	}
	sa->req = aead_request_alloc(sa->tfm, GFP_KERNEL);
	if (!sa->req) {
		err = -ENOMEM;
		goto err_free_tfm;
	}

	sa->ns = ns;
	sa->xs = xs;
	sa->in = xs->xso.dir == XFRM_DEV_OFFLOAD_IN;
	sa->esn = xs->props.flags & XFRM_STATE_ESN;
	sa->tunnel = xs->props.mode == XFRM_MODE_TUNNEL;
	if (xs->replay_esn) {
		sa->window = xs->replay_esn->replay_window;
		sa->seq = sa->in ? (u64)xs->replay_esn->seq_hi << 32 |
				   xs->replay_esn->seq :
				   (u64)xs->replay_esn->oseq_hi << 32 |
				   xs->replay_esn->oseq;
	} else {
		sa->window = xs->props.replay_window;
		sa->seq = sa->in ? xs->replay.seq : xs->replay.oseq;
	}

	if (sa->tunnel)
		solicit = nsim_pkt_init_next_hop(dev, sa);

	xs->xso.offload_handle = (unsigned long)sa;
	spin_lock_bh(&ipsec->lock);
	list_add(&sa->list, &ipsec->pkt_sas);
	spin_unlock_bh(&ipsec->lock);
	/* On the list first: the answer may come back before this returns,
	 * and only the netevent it raises updates the snapshot.
	 */
	if (solicit) {
		neigh_event_send(solicit, NULL);
		neigh_release(solicit);
	}
	return 0;

err_free_tfm:
	crypto_free_aead(sa->tfm);
err_free_sa:
	kfree(sa);
	return err;
}

void nsim_pkt_state_delete(struct xfrm_state *xs)
{
	struct nsim_pkt_sa *sa = nsim_pkt_sa(xs);
	struct netdevsim *ns;

	if (!sa)	/* an acquire's placeholder */
		return;
	ns = sa->ns;
	spin_lock_bh(&ns->ipsec.lock);
	list_del_init(&sa->list);
	spin_unlock_bh(&ns->ipsec.lock);
}

void nsim_pkt_state_free(struct xfrm_state *xs)
{
	struct nsim_pkt_sa *sa = nsim_pkt_sa(xs);

	if (!sa)
		return;
	/* Before the free: the stats callback (xfrm_timer_handler()) can
	 * run against a state the device flush frees, and must find no SA.
	 */
	WRITE_ONCE(xs->xso.offload_handle, 0);
	aead_request_free(sa->req);
	crypto_free_aead(sa->tfm);
	kfree(sa);
}

void nsim_pkt_state_update_stats(struct xfrm_state *xs)
{
	struct nsim_pkt_sa *sa = nsim_pkt_sa(xs);
	struct netdevsim *ns;

	if (!sa)
		return;
	ns = sa->ns;
	spin_lock_bh(&ns->ipsec.lock);
	xs->curlft.packets += sa->packets - sa->reported_packets;
	xs->curlft.bytes += sa->bytes - sa->reported_bytes;
	xs->stats.integrity_failed += sa->drop_icv - sa->reported_icv;
	xs->stats.replay += sa->drop_replay - sa->reported_replay;
	sa->reported_packets = sa->packets;
	sa->reported_bytes = sa->bytes;
	sa->reported_icv = sa->drop_icv;
	sa->reported_replay = sa->drop_replay;
	/* The device owns the output sequence number.  The inbound replay
	 * state (highest number and bitmap) stays on the device, as on
	 * mlx5: a number without its bitmap would mislead a reader.
	 */
	if (!sa->in && xs->replay_esn) {
		xs->replay_esn->oseq = lower_32_bits(sa->seq);
		xs->replay_esn->oseq_hi = upper_32_bits(sa->seq);
	} else if (!sa->in) {
		xs->replay.oseq = lower_32_bits(sa->seq);
	}
	spin_unlock_bh(&ns->ipsec.lock);
}

int nsim_pkt_policy_add(struct xfrm_policy *xp, struct netlink_ext_ack *extack)
{
	struct netdevsim *ns = netdev_priv(xp->xdo.dev);
	struct nsim_pkt_pol *pol;

	/* mlx5e_xfrm_validate_policy()'s checks and messages, in its order,
	 * then the emulation's own (it models no block rule, no template-less
	 * policy and no interface match).
	 */
	if (xp->type != XFRM_POLICY_TYPE_MAIN) {
		NSIM_EA(extack, "Cannot offload non-main policy types");
		return -EINVAL;
	}
	if (xp->xfrm_nr > 1) {
		NSIM_EA(extack, "Cannot offload more than one template");
		return -EINVAL;
	}
	if (xp->xdo.dir != XFRM_DEV_OFFLOAD_IN &&
	    xp->xdo.dir != XFRM_DEV_OFFLOAD_OUT) {
		NSIM_EA(extack, "Cannot offload forward policy");
		return -EINVAL;
	}
	if (xp->xfrm_nr && !xp->xfrm_vec[0].reqid && xp->selector.proto == IPPROTO_IP &&
	    xfrm_addr_any(&xp->selector.saddr, xp->selector.family) &&
	    xfrm_addr_any(&xp->selector.daddr, xp->selector.family)) {
		NSIM_EA(extack,
			"Unsupported policy with reqid 0 without at least one of upper protocol or ip addr(s) different than 0");
		return -EINVAL;
	}
	if (!nsim_pkt_sel_proto_ok(xp->selector.proto)) {
		NSIM_EA(extack, "Device does not support upper protocol other than TCP/UDP");
		return -EINVAL;
	}
	if (xp->priority == U32_MAX) {
		NSIM_EA(extack, "Device does not support requested policy priority");
		return -EINVAL;
	}
	if (xp->action != XFRM_POLICY_ALLOW) {
		NSIM_EA(extack, "Packet offload supports allow policies only");
		return -EINVAL;
	}
	if (xp->xfrm_nr != 1 || xp->xfrm_vec[0].id.proto != IPPROTO_ESP) {
		NSIM_EA(extack, "Packet offload supports one ESP template only");
		return -EINVAL;
	}
	if (xp->selector.family != AF_INET && xp->selector.family != AF_INET6) {
		NSIM_EA(extack, "Policy needs an IPv4 or IPv6 selector");
		return -EINVAL;
	}
	if (xp->selector.ifindex) {
		NSIM_EA(extack, "Packet offload does not match on an interface");
		return -EINVAL;
	}

	pol = kzalloc_obj(*pol);
	if (!pol)
		return -ENOMEM;
	pol->xp = xp;
	xp->xdo.offload_handle = (unsigned long)pol;

	spin_lock_bh(&ns->ipsec.lock);
	list_add_tail(&pol->list, &ns->ipsec.pkt_pols);
	spin_unlock_bh(&ns->ipsec.lock);
	return 0;
}

void nsim_pkt_policy_delete(struct xfrm_policy *xp)
{
	struct netdevsim *ns = netdev_priv(xp->xdo.dev);
	struct nsim_pkt_pol *pol = (struct nsim_pkt_pol *)xp->xdo.offload_handle;

	spin_lock_bh(&ns->ipsec.lock);
	list_del_init(&pol->list);
	spin_unlock_bh(&ns->ipsec.lock);
}

void nsim_pkt_policy_free(struct xfrm_policy *xp)
{
	kfree((struct nsim_pkt_pol *)xp->xdo.offload_handle);
	xp->xdo.offload_handle = 0;
}

/* What the device parses of a plain packet to match it to a policy. */
struct nsim_pkt_flow {
	unsigned short family;
	xfrm_address_t saddr;
	xfrm_address_t daddr;
	u8 proto;		/* upper layer, past IPv6 extension headers */
	__be16 sport;
	__be16 dport;
	unsigned int nhoff;	/* network header, from skb->data */
	u8 nexthdr;		/* the header after the IP header ... */
	unsigned int l4off;	/* ... and where it starts, from skb->data */
	bool fragment;		/* an IPv4 fragment */
};

static bool nsim_pkt_parse(struct sk_buff *skb, unsigned int nhoff,
			   struct nsim_pkt_flow *flow)
{
	unsigned int ulpoff;
	__be16 ports[2];
	__be16 frag_off;
	int off;

	memset(flow, 0, sizeof(*flow));
	flow->nhoff = nhoff;
	switch (skb->protocol) {
	case htons(ETH_P_IP): {
		struct iphdr iph;

		if (skb_copy_bits(skb, nhoff, &iph, sizeof(iph)) ||
		    iph.version != 4 || iph.ihl < 5)
			return false;
		flow->family = AF_INET;
		flow->saddr.a4 = iph.saddr;
		flow->daddr.a4 = iph.daddr;
		flow->proto = iph.protocol;
		flow->nexthdr = iph.protocol;
		flow->l4off = nhoff + iph.ihl * 4;
		ulpoff = flow->l4off;
		flow->fragment = ip_is_fragment(&iph);
		if (flow->fragment)
			return true;
		break;
	}
	case htons(ETH_P_IPV6): {
		struct ipv6hdr ip6h;

		if (skb_copy_bits(skb, nhoff, &ip6h, sizeof(ip6h)) ||
		    ip6h.version != 6)
			return false;
		flow->family = AF_INET6;
		flow->saddr.in6 = ip6h.saddr;
		flow->daddr.in6 = ip6h.daddr;
		flow->nexthdr = ip6h.nexthdr;
		flow->l4off = nhoff + sizeof(ip6h);
		/* Classified on the upper layer, as the stack's selectors
		 * are: a match on the first next header would send a
		 * packet with extension headers in the clear.
		 */
		flow->proto = ip6h.nexthdr;
		off = ipv6_skip_exthdr(skb, flow->l4off, &flow->proto,
				       &frag_off);
		if (off < 0 || frag_off & htons(IP6_OFFSET))
			return true;
		ulpoff = off;
		break;
	}
	default:
		return false;
	}

	if ((flow->proto == IPPROTO_TCP || flow->proto == IPPROTO_UDP) &&
	    !skb_copy_bits(skb, ulpoff, ports, sizeof(ports))) {
		flow->sport = ports[0];
		flow->dport = ports[1];
	}
	return true;
}

static bool nsim_pkt_sel_match(const struct xfrm_selector *sel,
			       const struct nsim_pkt_flow *flow)
{
	if (sel->family != flow->family)
		return false;
	if (sel->proto && sel->proto != flow->proto)
		return false;
	if ((flow->sport ^ sel->sport) & sel->sport_mask ||
	    (flow->dport ^ sel->dport) & sel->dport_mask)
		return false;
	if (flow->family == AF_INET)
		return addr4_match(flow->saddr.a4, sel->saddr.a4, sel->prefixlen_s) &&
		       addr4_match(flow->daddr.a4, sel->daddr.a4, sel->prefixlen_d);
	return addr_match(&flow->saddr, &sel->saddr, sel->prefixlen_s) &&
	       addr_match(&flow->daddr, &sel->daddr, sel->prefixlen_d);
}

static bool nsim_pkt_addr_equal(const xfrm_address_t *a,
				const xfrm_address_t *b, unsigned short family)
{
	return family == AF_INET ? a->a4 == b->a4 :
	       ipv6_addr_equal(&a->in6, &b->in6);
}

/* A template address left out (the stack fills it in from the flow or
 * the route) matches any state address.
 */
static bool nsim_pkt_tmpl_addr_match(const xfrm_address_t *tmpl,
				     const xfrm_address_t *addr,
				     unsigned short family)
{
	return xfrm_addr_any(tmpl, family) ||
	       nsim_pkt_addr_equal(tmpl, addr, family);
}

/* The out state the hardware would pick: the best (lowest priority
 * value) matching out policy, then the newest valid state for its
 * template.  Called under ipsec->lock.  NULL: the packet goes out as it
 * is, as on mlx5, whose TX policy and SA rules match non-fragments only
 * (setup_fte_no_frags()), and whose policy rule marks no reqid for a
 * template without one, which no SA rule matches: in NIC mode neither
 * table has a miss rule, so such packets reach the wire in the clear.
 */
static struct nsim_pkt_sa *nsim_pkt_tx_lookup(struct nsim_ipsec *ipsec,
					      const struct nsim_pkt_flow *flow)
{
	struct xfrm_policy *best = NULL;
	const struct xfrm_tmpl *tmpl;
	struct nsim_pkt_pol *pol;
	struct nsim_pkt_sa *sa;

	if (flow->fragment)
		return NULL;
	list_for_each_entry(pol, &ipsec->pkt_pols, list) {
		struct xfrm_policy *xp = pol->xp;

		if (xp->xdo.dir != XFRM_DEV_OFFLOAD_OUT ||
		    !nsim_pkt_sel_match(&xp->selector, flow))
			continue;
		if (!best || xp->priority < best->priority)
			best = xp;
	}
	if (!best)
		return NULL;

	tmpl = &best->xfrm_vec[0];
	if (!tmpl->reqid)
		return NULL;
	list_for_each_entry(sa, &ipsec->pkt_sas, list) {
		struct xfrm_state *xs = sa->xs;

		if (sa->in || xs->km.state != XFRM_STATE_VALID ||
		    tmpl->reqid != xs->props.reqid ||
		    tmpl->mode != xs->props.mode)
			continue;
		if (tmpl->mode == XFRM_MODE_TUNNEL &&
		    (tmpl->encap_family != xs->props.family ||
		     !nsim_pkt_tmpl_addr_match(&tmpl->id.daddr, &xs->id.daddr,
					       xs->props.family) ||
		     !nsim_pkt_tmpl_addr_match(&tmpl->saddr, &xs->props.saddr,
					       xs->props.family)))
			continue;
		/* States are added at the head: the first is the newest. */
		return sa;
	}
	return ERR_PTR(-ENOENT);
}

/* Runs the AEAD over an ESP packet in place.  @esp points at the ESP
 * header, @len covers header, IV, payload, trailer and ICV.  The AAD is
 * SPI and sequence number, with the ESN high bits between them.
 */
static int nsim_pkt_crypt(struct nsim_pkt_sa *sa, u8 *esp, unsigned int len,
			  u64 seq, bool encrypt)
{
	struct aead_request *req = sa->req;
	__be32 *aad = sa->aad;
	struct scatterlist sg[2];
	unsigned int aad_len;

	aad[0] = ((struct ip_esp_hdr *)esp)->spi;
	if (sa->esn) {
		aad[1] = htonl(upper_32_bits(seq));
		aad[2] = htonl(lower_32_bits(seq));
		aad_len = 12;
	} else {
		aad[1] = htonl(lower_32_bits(seq));
		aad_len = 8;
	}

	sg_init_table(sg, 2);
	sg_set_buf(&sg[0], aad, aad_len);
	sg_set_buf(&sg[1], esp + sizeof(struct ip_esp_hdr),
		   len - sizeof(struct ip_esp_hdr));

	aead_request_set_callback(req, 0, NULL, NULL);
	/* rfc4106 takes the explicit IV as the last 8 bytes of the AD. */
	aead_request_set_ad(req, aad_len + NSIM_PKT_IV_LEN);
	aead_request_set_crypt(req, sg, sg,
			       len - NSIM_PKT_ESP_LEN -
			       (encrypt ? NSIM_PKT_ICV_LEN : 0),
			       esp + sizeof(struct ip_esp_hdr));
	return encrypt ? crypto_aead_encrypt(req) : crypto_aead_decrypt(req);
}

/* The outer header of a tunnel, as mlx5 gives it to its device when the
 * state is added (its reformat header): no DSCP or ECN copied from the
 * inner header, no DF, a fixed hop limit; the device fills in lengths and
 * checksum.
 */
static void nsim_pkt_build_ip(struct xfrm_state *xs, u8 *hdr,
			      unsigned int payload_len)
{
	if (xs->props.family == AF_INET) {
		struct iphdr *iph = (struct iphdr *)hdr;

		memset(iph, 0, sizeof(*iph));
		iph->version = 4;
		iph->ihl = 5;
		iph->tot_len = htons(sizeof(*iph) + payload_len);
		iph->ttl = IPDEFTTL;
		iph->protocol = IPPROTO_ESP;
		iph->saddr = xs->props.saddr.a4;
		iph->daddr = xs->id.daddr.a4;
		ip_send_check(iph);
	} else {
		struct ipv6hdr *ip6h = (struct ipv6hdr *)hdr;

		memset(ip6h, 0, sizeof(*ip6h));
		ip6_flow_hdr(ip6h, 0, 0);
		ip6h->payload_len = htons(payload_len);
		ip6h->nexthdr = IPPROTO_ESP;
		ip6h->hop_limit = IPDEFTTL;
		ip6h->saddr = xs->props.saddr.in6;
		ip6h->daddr = xs->id.daddr.in6;
	}
}

/* Encapsulates and encrypts one plain (non-GSO) packet.  Returns the
 * packet to put on the wire, or NULL when the skb was dropped.
 */
/* The hard limits, counted per packet as mlx5's hardware counts them: a
 * state that reached one carries nothing more.
 */
static bool nsim_pkt_hard_expired(const struct nsim_pkt_sa *sa)
{
	const struct xfrm_lifetime_cfg *lft = &sa->xs->lft;

	return sa->packets >= lft->hard_packet_limit ||
	       sa->bytes >= lft->hard_byte_limit;
}

/* After a packet is counted: whether it crossed a soft or hard limit,
 * which the stack is then told of.  Called under ipsec->lock.
 */
static bool nsim_pkt_lifetime_crossed(struct nsim_pkt_sa *sa)
{
	const struct xfrm_lifetime_cfg *lft = &sa->xs->lft;
	u8 level = 0;

	if (nsim_pkt_hard_expired(sa))
		level = 2;
	else if (sa->packets >= lft->soft_packet_limit ||
		 sa->bytes >= lft->soft_byte_limit)
		level = 1;
	if (level <= sa->lft_level)
		return false;
	sa->lft_level = level;
	return true;
}

/* What mlx5 does on its hardware's lifetime events: the stack reads the
 * counters back (update_stats, which takes ipsec->lock, so not under it)
 * and sends the soft expire, or expires and deletes the state.  @xs is
 * safe under RCU: states are freed after a grace period.
 */
static void nsim_pkt_check_expire(struct xfrm_state *xs)
{
	spin_lock(&xs->lock);
	if (xs->km.state == XFRM_STATE_VALID)
		xfrm_state_check_expire(xs);
	spin_unlock(&xs->lock);
}

static struct sk_buff *nsim_pkt_tx_one(struct netdevsim *ns,
				       struct sk_buff *skb)
{
	struct nsim_ipsec *ipsec = &ns->ipsec;
	unsigned int outer_len, hdr_len, payload_len, plen, esp_len, total;
	struct nsim_pkt_flow flow;
	struct nsim_pkt_sa *sa;
	struct sk_buff *nskb;
	struct xfrm_state *xs;
	u8 *p, *esp;
	bool expire;
	u8 ha[ETH_ALEN];
	struct ethhdr *eth;
	unsigned int i;
	u8 nexthdr;
	u64 seq;

	if (!nsim_pkt_parse(skb, skb_network_offset(skb), &flow))
		return skb;

	spin_lock(&ipsec->lock);
	sa = nsim_pkt_tx_lookup(ipsec, &flow);
	if (!sa) {
		/* Not IPsec traffic: goes out as it is. */
		spin_unlock(&ipsec->lock);
		return skb;
	}
	if (IS_ERR(sa)) {
		ipsec->pkt_tx_no_state++;
		goto drop_unlock;
	}
	xs = sa->xs;
	if (READ_ONCE(ipsec->pkt_fail_tx))
		goto drop_unlock;
	if (nsim_pkt_hard_expired(sa)) {
		ipsec->pkt_tx_expired++;
		goto drop_unlock;
	}

	if (sa->tunnel) {
		if (sa->no_neigh) {
			ipsec->pkt_tx_no_neigh++;
			goto drop_unlock;
		}
		ether_addr_copy(ha, sa->next_hop_ha);
	} else if (flow.nhoff < ETH_HLEN ||
		   skb_copy_bits(skb, 0, ha, ETH_ALEN)) {
		goto drop_unlock;
	}

	if (sa->tunnel) {
		hdr_len = 0;
		payload_len = skb->len - flow.nhoff;
		nexthdr = flow.family == AF_INET ? IPPROTO_IPIP : IPPROTO_IPV6;
	} else {
		hdr_len = flow.l4off - flow.nhoff;
		payload_len = skb->len - flow.l4off;
		nexthdr = flow.nexthdr;
		/* Transport mode ESP goes after the IP header: extension
		 * headers are not supported (fragments never get here).
		 */
		if (flow.family == AF_INET6 && ipv6_ext_hdr(nexthdr))
			goto drop_unlock;
	}
	outer_len = sa->tunnel ? (xs->props.family == AF_INET ?
				  sizeof(struct iphdr) :
				  sizeof(struct ipv6hdr)) : hdr_len;
	/* RFC 4303 2.4: pad so that pad length and next header end on a
	 * 4 byte boundary; GCM itself needs no block alignment.
	 */
	plen = ALIGN(payload_len + 2, 4) - payload_len - 2;
	esp_len = NSIM_PKT_ESP_LEN + payload_len + plen + 2 + NSIM_PKT_ICV_LEN;
	total = ETH_HLEN + outer_len + esp_len;

	/* The 64 bit counter goes on after a permitted wrap: the GCM
	 * nonce (the explicit IV) never repeats under one key.
	 */
	if (!sa->esn && sa->seq >= U32_MAX &&
	    !(xs->props.extra_flags & XFRM_SA_XFLAG_OSEQ_MAY_WRAP)) {
		ipsec->pkt_tx_seq_overflow++;
		goto drop_unlock;
	}

	nskb = alloc_skb(NET_IP_ALIGN + total, GFP_ATOMIC);
	if (!nskb)
		goto drop_unlock;
	skb_reserve(nskb, NET_IP_ALIGN);
	p = skb_put(nskb, total);

	seq = ++sa->seq;

	eth = (struct ethhdr *)p;
	ether_addr_copy(eth->h_dest, ha);
	if (sa->tunnel)
		ether_addr_copy(eth->h_source, ns->netdev->dev_addr);
	else if (skb_copy_bits(skb, ETH_ALEN, eth->h_source, ETH_ALEN))
		goto drop_nskb;
	eth->h_proto = xs->props.family == AF_INET ? htons(ETH_P_IP) :
			htons(ETH_P_IPV6);
	p += ETH_HLEN;

	if (sa->tunnel) {
		nsim_pkt_build_ip(xs, p, esp_len);
	} else if (skb_copy_bits(skb, flow.nhoff, p, hdr_len)) {
		goto drop_nskb;
	} else if (flow.family == AF_INET) {
		struct iphdr *iph = (struct iphdr *)p;

		iph->protocol = IPPROTO_ESP;
		iph->tot_len = htons(hdr_len + esp_len);
		ip_send_check(iph);
	} else {
		struct ipv6hdr *ip6h = (struct ipv6hdr *)p;

		ip6h->nexthdr = IPPROTO_ESP;
		ip6h->payload_len = htons(esp_len);
	}
	esp = p + outer_len;

	((struct ip_esp_hdr *)esp)->spi = xs->id.spi;
	((struct ip_esp_hdr *)esp)->seq_no = htonl(lower_32_bits(seq));
	/* The sequence number is unique per key: a valid GCM nonce. */
	put_unaligned_be64(seq, esp + sizeof(struct ip_esp_hdr));
	p = esp + NSIM_PKT_ESP_LEN;
	if (skb_copy_bits(skb, sa->tunnel ? flow.nhoff : flow.l4off, p,
			  payload_len))
		goto drop_nskb;
	p += payload_len;
	for (i = 0; i < plen; i++)
		*p++ = i + 1;
	*p++ = plen;
	*p++ = nexthdr;

	if (READ_ONCE(ipsec->pkt_fail_encrypt))
		memset(p, 0, NSIM_PKT_ICV_LEN);
	else if (nsim_pkt_crypt(sa, esp, esp_len, seq, true))
		goto drop_nskb;

	sa->packets++;
	sa->bytes += skb->len - flow.nhoff;
	ipsec->pkt_tx++;
	expire = nsim_pkt_lifetime_crossed(sa);
	spin_unlock(&ipsec->lock);
	if (expire)
		nsim_pkt_check_expire(xs);

	skb_reset_mac_header(nskb);
	skb_set_network_header(nskb, ETH_HLEN);
	nskb->protocol = eth->h_proto;
	nskb->dev = skb->dev;
	skb_set_queue_mapping(nskb, skb_get_queue_mapping(skb));
	consume_skb(skb);
	return nskb;

drop_nskb:
	kfree_skb(nskb);
drop_unlock:
	ipsec->pkt_tx_drop++;
	spin_unlock(&ipsec->lock);
	kfree_skb(skb);
	return NULL;
}

/* Returns the packets to put on the wire, as a list, or NULL. */
struct sk_buff *nsim_pkt_tx(struct netdevsim *ns, struct sk_buff *skb)
{
	struct sk_buff *segs, *next, *out = NULL, **tail = &out;

	if (list_empty(&ns->ipsec.pkt_pols))
		return skb;

	if (skb_is_gso(skb)) {
		segs = skb_gso_segment(skb, 0);
		if (IS_ERR_OR_NULL(segs)) {
			kfree_skb(skb);
			return NULL;
		}
		consume_skb(skb);
	} else {
		if (skb->ip_summed == CHECKSUM_PARTIAL &&
		    skb_checksum_help(skb)) {
			kfree_skb(skb);
			return NULL;
		}
		segs = skb;
		skb_mark_not_on_list(skb);
	}

	skb_list_walk_safe(segs, skb, next) {
		skb_mark_not_on_list(skb);
		if (skb->ip_summed == CHECKSUM_PARTIAL &&
		    skb_checksum_help(skb)) {
			kfree_skb(skb);
			continue;
		}
		skb = nsim_pkt_tx_one(ns, skb);
		if (!skb)
			continue;
		*tail = skb;
		tail = &skb->next;
	}
	return out;
}

/* RFC 4303 Appendix A2: the high half of a received ESN. */
static u64 nsim_pkt_esn_seq(const struct nsim_pkt_sa *sa, u32 seq_lo)
{
	u32 top_lo = lower_32_bits(sa->seq), top_hi = upper_32_bits(sa->seq);
	u32 w = max(sa->window, 1U);

	if (!sa->esn)
		return seq_lo;
	if (top_lo >= w - 1) {
		if (seq_lo >= top_lo - w + 1)
			return (u64)top_hi << 32 | seq_lo;
		return (u64)(top_hi + 1) << 32 | seq_lo;
	}
	if (seq_lo >= top_lo - w + 1)
		return (u64)(top_hi - 1) << 32 | seq_lo;
	return (u64)top_hi << 32 | seq_lo;
}

/* Bit i of the window is sequence number sa->seq - i. */
static bool nsim_pkt_replay_check(const struct nsim_pkt_sa *sa, u64 seq)
{
	if (!sa->window)
		return true;
	if (seq > sa->seq)
		return true;
	if (sa->seq - seq >= sa->window)
		return false;
	return !test_bit(sa->seq - seq, sa->bitmap);
}

static void nsim_pkt_replay_advance(struct nsim_pkt_sa *sa, u64 seq)
{
	u64 shift;

	if (seq > sa->seq) {
		shift = seq - sa->seq;
		if (shift >= NSIM_PKT_REPLAY_MAX)
			bitmap_zero(sa->bitmap, NSIM_PKT_REPLAY_MAX);
		else
			bitmap_shift_left(sa->bitmap, sa->bitmap, shift,
					  NSIM_PKT_REPLAY_MAX);
		sa->seq = seq;
	}
	if (sa->window && sa->seq - seq < sa->window)
		set_bit(sa->seq - seq, sa->bitmap);
}

static struct nsim_pkt_sa *nsim_pkt_rx_lookup(struct nsim_ipsec *ipsec,
					      unsigned short family,
					      const xfrm_address_t *daddr,
					      __be32 spi)
{
	struct nsim_pkt_sa *sa;

	list_for_each_entry(sa, &ipsec->pkt_sas, list) {
		struct xfrm_state *xs = sa->xs;

		if (sa->in && xs->id.spi == spi && xs->props.family == family &&
		    nsim_pkt_addr_equal(&xs->id.daddr, daddr, family))
			return sa;
	}
	return NULL;
}

/* Decapsulates @skb (data at the outer network header, linear and
 * writable) whose plaintext is @pt_len bytes after the ESP header and IV.
 */
static int nsim_pkt_decap(struct nsim_pkt_sa *sa, struct sk_buff *skb,
			  unsigned int outer_len, unsigned int pt_len)
{
	u8 *pt = skb->data + outer_len + NSIM_PKT_ESP_LEN;
	u8 plen = pt[pt_len - 2], nexthdr = pt[pt_len - 1];
	unsigned int inner_len;
	struct ethhdr eth;

	if (plen + 2 > pt_len)
		return -EINVAL;
	inner_len = pt_len - plen - 2;
	memcpy(&eth, skb_mac_header(skb), ETH_HLEN);

	if (sa->tunnel) {
		if (nexthdr == IPPROTO_IPIP && inner_len >= sizeof(struct iphdr))
			eth.h_proto = htons(ETH_P_IP);
		else if (nexthdr == IPPROTO_IPV6 &&
			 inner_len >= sizeof(struct ipv6hdr))
			eth.h_proto = htons(ETH_P_IPV6);
		else
			return -EINVAL;
		__skb_pull(skb, outer_len + NSIM_PKT_ESP_LEN);
		pskb_trim(skb, inner_len);
	} else {
		/* Close the gap left by ESP header and IV. */
		memmove(skb->data + NSIM_PKT_ESP_LEN, skb->data, outer_len);
		__skb_pull(skb, NSIM_PKT_ESP_LEN);
		pskb_trim(skb, outer_len + inner_len);
		if (sa->xs->props.family == AF_INET) {
			struct iphdr *iph = (struct iphdr *)skb->data;

			iph->protocol = nexthdr;
			iph->tot_len = htons(skb->len);
			ip_send_check(iph);
		} else {
			struct ipv6hdr *ip6h = (struct ipv6hdr *)skb->data;

			ip6h->nexthdr = nexthdr;
			ip6h->payload_len = htons(skb->len - sizeof(*ip6h));
		}
	}

	/* The frame as the NIC delivers it: L2 right before the packet. */
	memcpy(__skb_push(skb, ETH_HLEN), &eth, ETH_HLEN);
	skb_reset_mac_header(skb);
	__skb_pull(skb, ETH_HLEN);
	skb_reset_network_header(skb);
	skb_reset_mac_len(skb);
	skb->protocol = eth.h_proto;
	skb->ip_summed = CHECKSUM_NONE;
	return 0;
}

/* Called for each frame the port receives, data at the network header.
 * Returns the skb to hand to the stack, or NULL if it was dropped.
 */
struct sk_buff *nsim_pkt_rx(struct netdevsim *ns, struct sk_buff *skb)
{
	struct nsim_ipsec *ipsec = &ns->ipsec;
	unsigned int outer_len, pkt_len, esp_len;
	struct xfrm_offload *xo;
	xfrm_address_t daddr = {};
	struct ip_esp_hdr esph;
	unsigned short family;
	struct xfrm_state *xs;
	struct nsim_pkt_sa *sa;
	struct sec_path *sp;
	bool expire;
	u64 seq;
	int err;

	/* The port's MAC filter comes first: a frame for another address
	 * never reaches the IPsec steering, and the stack drops it.
	 */
	if (list_empty(&ipsec->pkt_sas) || skb->pkt_type != PACKET_HOST)
		return skb;

	/* Only a well-formed outer header is steered to IPsec; anything
	 * else, fragments included, is the stack's to count and drop.  The
	 * packet ends where its header says, not where the frame does
	 * (Ethernet padding).
	 */
	if (skb->protocol == htons(ETH_P_IP)) {
		struct iphdr iph;

		if (skb_copy_bits(skb, 0, &iph, sizeof(iph)) ||
		    iph.version != 4 || iph.ihl < 5 ||
		    iph.protocol != IPPROTO_ESP || ip_is_fragment(&iph))
			return skb;
		family = AF_INET;
		daddr.a4 = iph.daddr;
		outer_len = iph.ihl * 4;
		pkt_len = ntohs(iph.tot_len);
	} else if (skb->protocol == htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6h;

		if (skb_copy_bits(skb, 0, &ip6h, sizeof(ip6h)) ||
		    ip6h.version != 6 || ip6h.nexthdr != IPPROTO_ESP ||
		    !ip6h.payload_len)
			return skb;
		family = AF_INET6;
		daddr.in6 = ip6h.daddr;
		outer_len = sizeof(ip6h);
		pkt_len = outer_len + ntohs(ip6h.payload_len);
	} else {
		return skb;
	}
	if (pkt_len < outer_len + sizeof(esph) || pkt_len > skb->len ||
	    skb_copy_bits(skb, outer_len, &esph, sizeof(esph)))
		return skb;

	spin_lock(&ipsec->lock);
	sa = nsim_pkt_rx_lookup(ipsec, family, &daddr, esph.spi);
	if (!sa) {
		/* Not offloaded here: the stack decides (software SA or
		 * XfrmInNoStates).
		 */
		ipsec->pkt_rx_unknown++;
		spin_unlock(&ipsec->lock);
		return skb;
	}
	if (sa->xs->km.state != XFRM_STATE_VALID || nsim_pkt_hard_expired(sa)) {
		ipsec->pkt_rx_expired++;
		goto drop_unlock;
	}
	if (sa->no_neigh) {
		ipsec->pkt_rx_drop++;
		goto drop_unlock;
	}

	if (pskb_trim_rcsum(skb, pkt_len) || skb_linearize(skb) ||
	    skb_ensure_writable(skb, skb->len)) {
		ipsec->pkt_rx_drop++;
		goto drop_unlock;
	}
	esp_len = skb->len - outer_len;
	if (esp_len < NSIM_PKT_ESP_LEN + 2 + NSIM_PKT_ICV_LEN) {
		ipsec->pkt_rx_drop++;
		goto drop_unlock;
	}

	seq = nsim_pkt_esn_seq(sa, ntohl(esph.seq_no));
	if (!nsim_pkt_replay_check(sa, seq)) {
		sa->drop_replay++;
		ipsec->pkt_rx_replay++;
		goto drop_unlock;
	}
	err = nsim_pkt_crypt(sa, skb->data + outer_len, esp_len, seq, false);
	if (err) {
		sa->drop_icv++;
		ipsec->pkt_rx_bad_icv++;
		goto drop_unlock;
	}
	/* Only authenticated packets move the window. */
	nsim_pkt_replay_advance(sa, seq);

	if (nsim_pkt_decap(sa, skb, outer_len,
			   esp_len - NSIM_PKT_ESP_LEN - NSIM_PKT_ICV_LEN)) {
		ipsec->pkt_rx_drop++;
		goto drop_unlock;
	}

	sp = secpath_set(skb);
	if (!sp) {
		ipsec->pkt_rx_drop++;
		goto drop_unlock;
	}
	xfrm_state_hold(sa->xs);
	sp->xvec[sp->len++] = sa->xs;
	sp->olen++;
	xo = xfrm_offload(skb);
	xo->flags = CRYPTO_DONE;
	xo->status = CRYPTO_SUCCESS;

	sa->packets++;
	sa->bytes += skb->len;
	ipsec->pkt_rx++;
	expire = nsim_pkt_lifetime_crossed(sa);
	/* The device flush frees sa as soon as it has the lock; the state
	 * itself is freed after a grace period, which this softirq holds.
	 */
	xs = sa->xs;
	spin_unlock(&ipsec->lock);
	if (expire)
		nsim_pkt_check_expire(xs);
	return skb;

drop_unlock:
	spin_unlock(&ipsec->lock);
	kfree_skb(skb);
	return NULL;
}

/* Every port, PF or VF, runs the packet offload datapath in its transmit
 * and receive functions; only PF ports get states and policies.  The
 * lists must be valid, if empty, on all of them.
 */
void nsim_pkt_init(struct netdevsim *ns)
{
	spin_lock_init(&ns->ipsec.lock);
	INIT_LIST_HEAD(&ns->ipsec.pkt_sas);
	INIT_LIST_HEAD(&ns->ipsec.pkt_pols);
}

void nsim_pkt_show(struct netdevsim *ns, struct seq_file *m)
{
	struct nsim_ipsec *ipsec = &ns->ipsec;
	struct nsim_pkt_pol *pol;
	struct nsim_pkt_sa *sa;

	spin_lock_bh(&ipsec->lock);
	seq_printf(m, "packet tx=%llu tx_drop=%llu tx_no_state=%llu tx_no_neigh=%llu tx_seq_overflow=%llu tx_expired=%llu\n",
		   ipsec->pkt_tx, ipsec->pkt_tx_drop, ipsec->pkt_tx_no_state,
		   ipsec->pkt_tx_no_neigh, ipsec->pkt_tx_seq_overflow,
		   ipsec->pkt_tx_expired);
	seq_printf(m, "packet rx=%llu rx_drop=%llu rx_bad_icv=%llu rx_replay=%llu rx_unknown=%llu rx_expired=%llu\n",
		   ipsec->pkt_rx, ipsec->pkt_rx_drop, ipsec->pkt_rx_bad_icv,
		   ipsec->pkt_rx_replay, ipsec->pkt_rx_unknown,
		   ipsec->pkt_rx_expired);
	list_for_each_entry(sa, &ipsec->pkt_sas, list)
		seq_printf(m, "packet sa %s spi=0x%08x mode=%s esn=%d seq=%llu packets=%llu bytes=%llu bad_icv=%llu replay=%llu next_hop=%pM no_neigh=%d\n",
			   sa->in ? "in" : "out", ntohl(sa->xs->id.spi),
			   sa->tunnel ? "tunnel" : "transport", sa->esn,
			   sa->seq, sa->packets, sa->bytes, sa->drop_icv,
			   sa->drop_replay, sa->next_hop_ha, sa->no_neigh);
	list_for_each_entry(pol, &ipsec->pkt_pols, list)
		seq_printf(m, "packet policy %s index=%u priority=%u reqid=%u\n",
			   pol->xp->xdo.dir == XFRM_DEV_OFFLOAD_IN ? "in" : "out",
			   pol->xp->index, pol->xp->priority,
			   pol->xp->xfrm_vec[0].reqid);
	spin_unlock_bh(&ipsec->lock);
}
