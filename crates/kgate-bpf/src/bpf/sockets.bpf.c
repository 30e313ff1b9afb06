// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * Socket families: lsm/socket_create runs in __sock_create before the
 * net-pf-N autoload, so a denied family loads nothing. Unprivileged tasks
 * only: privileged is CAP_NET_ADMIN in the initial user namespace (what
 * configuring a network family takes, and what container runtimes drop
 * by default), never uid 0; kernel-internal sockets (kern != 0) are never
 * touched. Denial: EAFNOSUPPORT when no rule names the family,
 * EPROTONOSUPPORT when the family is listed but not this type/protocol,
 * what the kernel itself returns for a family/protocol it lacks.
 * Included by kgate.bpf.c.
 */

static __always_inline bool kg_socket_listed(u32 gen, u32 family, u32 type, u32 protocol)
{
	struct kg_socket_key k = { .gen = gen, .family = family, .type = KG_ANY, .protocol = KG_ANY };
	if (bpf_map_lookup_elem(&kg_socket_allow, &k))
		return true;
	k.protocol = protocol;
	if (bpf_map_lookup_elem(&kg_socket_allow, &k))
		return true;
	k.type = type;
	if (bpf_map_lookup_elem(&kg_socket_allow, &k))
		return true;
	k.protocol = KG_ANY;
	if (bpf_map_lookup_elem(&kg_socket_allow, &k))
		return true;
	return false;
}

SEC("lsm/socket_create")
int BPF_PROG(kg_socket_create, int family, int type, int protocol, int kern)
{
	if (kern)
		return 0;
	if (kg_selftest_hit(KG_HOOK_SOCKET))
		KG_RETURN_ERR(EPERM);
	u32 gen = 0;
	struct kg_config *cfg = kg_current(&gen);
	if (!cfg || cfg->sockets_mode == KG_MODE_OFF)
		return 0;
	if (kg_privileged(KG_CAP_NET_ADMIN)) {
		kg_count(KG_HOOK_SOCKET, KG_PASS);
		return 0;
	}
	u32 fam = (u32)family;
	u32 ty = (u32)type & 0xf;
	u32 proto = (u32)protocol;
	if (kg_socket_listed(gen, fam, ty, proto)) {
		kg_count(KG_HOOK_SOCKET, KG_ALLOW);
		return 0;
	}
	u32 family_listed = 0;
	if (fam < KG_FAMILIES) {
		u32 idx = gen * KG_FAMILIES + fam;
		u8 *f = bpf_map_lookup_elem(&kg_socket_family, &idx);
		family_listed = f && *f;
	}
	u32 rule = family_listed ? KG_RULE_SOCKET_PROTOCOL : KG_RULE_SOCKET_FAMILY;
	if (cfg->sockets_mode == KG_MODE_ENFORCE) {
		kg_count(KG_HOOK_SOCKET, KG_DENY);
		kg_emit(KG_HOOK_SOCKET, KG_DENY, rule, 0, fam, ty, proto);
		if (family_listed)
			KG_RETURN_ERR(EPROTONOSUPPORT);
		KG_RETURN_ERR(EAFNOSUPPORT);
	}
	kg_count(KG_HOOK_SOCKET, KG_AUDIT);
	kg_emit(KG_HOOK_SOCKET, KG_AUDIT, rule, 0, fam, ty, proto);
	return 0;
}
