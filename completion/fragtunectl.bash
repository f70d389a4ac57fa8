# bash completion for fragtunectl(1). Installed as share/bash-completion/completions/fragtunectl.
# Commands, options and knob names mirror `fragtunectl --help` (checked by the integration tests).

_fragtunectl() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local commands="status history explain monitor mode pin unpin restore reload"
    local knobs="min_free_kbytes watermark_scale_factor compaction_proactiveness vfs_cache_pressure swappiness watermark_boost_factor"
    local global_opts="--address --json --utc --help --version"

    # Arguments of options.
    case $prev in
        --address)
            mapfile -t COMPREPLY < <(compgen -W "unix:path=/run/dbus/system_bus_socket" -- "$cur")
            return
            ;;
        -n|--lines)
            return
            ;;
    esac

    # The command is the first word that is not an option or an option's argument.
    local i command=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --address|-n|--lines) ((i++)) ;;
            -*) ;;
            *) command=${words[i]}; break ;;
        esac
    done

    local opts
    case $command in
        "")
            if [[ $cur == -* ]]; then
                mapfile -t COMPREPLY < <(compgen -W "$global_opts" -- "$cur")
            else
                mapfile -t COMPREPLY < <(compgen -W "$commands" -- "$cur")
            fi
            return
            ;;
        status) opts="--json -a --all-signals" ;;
        history) opts="--json -n --lines" ;;
        explain|pin|unpin)
            opts=""
            [[ $command == explain ]] && opts="--json"
            if [[ $cur != -* ]]; then
                # One knob; none after it.
                local j have_knob=""
                for ((j = i + 1; j < cword; j++)); do
                    [[ ${words[j]} != -* ]] && have_knob=1
                done
                [[ -z $have_knob ]] && mapfile -t COMPREPLY < <(compgen -W "$knobs" -- "$cur")
                return
            fi
            ;;
        mode)
            if [[ $cur != -* && $prev == mode ]]; then
                mapfile -t COMPREPLY < <(compgen -W "active observe paused" -- "$cur")
                return
            fi
            opts=""
            ;;
        monitor) opts="--json" ;;
        restore|reload) opts="" ;;
        *) return ;;
    esac
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts --address --utc --help" -- "$cur")
    fi
}

complete -F _fragtunectl fragtunectl
