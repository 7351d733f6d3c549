package viewsvc

import (
	"sort"

	discoveryv1 "github.com/goka-py/goka-py/clients/go/gen/discoveryv1"
)

// Member is a live member of a deployment as the discovery topic announces it.
type Member struct {
	ID         string
	Role       string // "processor", "view" or "router"
	Endpoint   string
	Group      string
	Generation int64
	Sequence   uint64
	Tables     []Table
}

// Table is how a member announces a table and which of its partitions it holds.
type Table struct {
	Topic          string
	Partitioner    string
	PartitionCount int
	KeyCodec       string
	ValueCodec     string
	Partitions     []Holding
}

// Holding is one table partition a member holds.
type Holding struct {
	Partition     int
	Kind          string // "active", "standby" or "replica"
	State         string // "recovering" or "running"
	AppliedOffset int64
	Lag           int64 // -1: unknown
}

// Owner is a member holding a partition.
type Owner struct {
	MemberID      string
	Endpoint      string
	Kind          string
	State         string
	AppliedOffset int64
	Lag           int64
	generation    int64
	sequence      uint64
}

var roles = map[discoveryv1.Role]string{
	discoveryv1.Role_ROLE_PROCESSOR: "processor",
	discoveryv1.Role_ROLE_VIEW:      "view",
	discoveryv1.Role_ROLE_ROUTER:    "router",
}

var kinds = map[discoveryv1.PartitionKind]string{
	discoveryv1.PartitionKind_PARTITION_KIND_ACTIVE:  "active",
	discoveryv1.PartitionKind_PARTITION_KIND_STANDBY: "standby",
	discoveryv1.PartitionKind_PARTITION_KIND_REPLICA: "replica",
}

var states = map[discoveryv1.PartitionState]string{
	discoveryv1.PartitionState_PARTITION_STATE_RECOVERING: "recovering",
	discoveryv1.PartitionState_PARTITION_STATE_RUNNING:    "running",
}

func memberFromPB(m *discoveryv1.Member) Member {
	a := m.GetAnnouncement()
	member := Member{
		ID: a.GetMemberId(), Role: roles[a.GetRole()], Endpoint: a.GetEndpoint(),
		Group: a.GetGroup(), Generation: a.GetGeneration(), Sequence: a.GetSequence(),
	}
	for _, t := range a.GetTables() {
		table := Table{
			Topic: t.GetTopic(), Partitioner: t.GetPartitioner(),
			PartitionCount: int(t.GetPartitionCount()), KeyCodec: t.GetKeyCodec(),
			ValueCodec: t.GetValueCodec(),
		}
		for _, p := range t.GetPartitions() {
			table.Partitions = append(table.Partitions, Holding{
				Partition: int(p.GetPartition()), Kind: kinds[p.GetKind()],
				State: states[p.GetState()], AppliedOffset: p.GetAppliedOffset(), Lag: p.GetLag(),
			})
		}
		member.Tables = append(member.Tables, table)
	}
	return member
}

// tableInfo is how some member announces table, or nil.
func tableInfo(members []Member, table string) *Table {
	for i := range members {
		for j := range members[i].Tables {
			if members[i].Tables[j].Topic == table {
				return &members[i].Tables[j]
			}
		}
	}
	return nil
}

// Owners are the members holding partition of table: the active owner first (of conflicting
// claims, the higher generation wins, then the higher sequence), then the others, running
// before recovering, least lag first (unknown lag last), as the Python client orders them.
func Owners(members []Member, table string, partition int) []Owner {
	var active *Owner
	var others []Owner
	for _, m := range members {
		for _, t := range m.Tables {
			if t.Topic != table {
				continue
			}
			for _, h := range t.Partitions {
				if h.Partition != partition {
					continue
				}
				owner := Owner{m.ID, m.Endpoint, h.Kind, h.State, h.AppliedOffset, h.Lag,
					m.Generation, m.Sequence}
				if h.Kind != "active" {
					others = append(others, owner)
				} else if active == nil || owner.generation > active.generation ||
					(owner.generation == active.generation && owner.sequence > active.sequence) {
					active = &owner
				}
			}
		}
	}
	sort.SliceStable(others, func(i, j int) bool {
		a, b := others[i], others[j]
		if (a.State == "running") != (b.State == "running") {
			return a.State == "running"
		}
		return lagOrder(a.Lag) < lagOrder(b.Lag)
	})
	if active != nil {
		return append([]Owner{*active}, others...)
	}
	return others
}

func lagOrder(lag int64) int64 {
	if lag < 0 {
		return 1 << 62
	}
	return lag
}
